//! Entry point: panics go to the console, the app mounts on `<body>`.

fn main() {
    console_error_panic_hook::set_once();
    flint_web::terminal::xterm::init_registry();
    leptos::mount::mount_to_body(flint_web::App);
}
