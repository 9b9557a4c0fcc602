"""py-spin: its route loops forever; the host's deadline must end the call."""

from capstan_guest import Plugin

app = Plugin()


@app.route("GET", "/spin")
def spin(request):
    n = 0
    while True:
        n += 1


Handler, _ = app.exports()
