"""py-hello: greets on its route, counts visits in kv, and offers the `tools` plugin's
MCP tools, written in Python against the Capstan guest SDK."""

from capstan_guest import CapstanError, Plugin, Response, kv, log

app = Plugin()


@app.route("GET", "/")
def hello(request):
    name = request.query_param("name", "world")
    log.info(f"greeting {name}")
    return Response.text(200, f"hello, {name}")


@app.route("GET", "/count")
def count(request):
    try:
        hits = kv.increment("hits")
    except CapstanError as error:
        return Response.json(403 if error.kind == "denied" else 500,
                             {"error": error.kind, "detail": error.detail})
    return Response.json(200, {"hits": hits})


@app.tool("add", "Add two numbers.", {
    "type": "object",
    "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
    "required": ["a", "b"],
})
def add(args, context):
    return args["a"] + args["b"]


@app.tool("word-count", "Count the words in a text.", {
    "type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"],
})
def word_count(args, context):
    return len(args["text"].split())


@app.tool("text-stats", "Count the words, characters and lines of a text.", {
    "type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"],
})
def text_stats(args, context):
    text = args["text"]
    return {"words": len(text.split()), "characters": len(text), "lines": len(text.splitlines())}


Handler, Mcp = app.exports()
