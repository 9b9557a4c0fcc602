//! Hostile input: a valid component of another world (a WASI command exporting
//! `wasi:cli/run`) that even carries a Capstan manifest.

#[used]
#[unsafe(link_section = "capstan-manifest")]
static MANIFEST: [u8; include_bytes!("../capstan.toml").len()] = *include_bytes!("../capstan.toml");

fn main() {
    println!("I am a command, not a plugin");
}
