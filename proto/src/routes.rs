//! Every route the guest agent serves, declared once.
//!
//! **API boundary:** the agent dispatches only through [`Route::parse`], so it cannot serve a
//! route this module does not declare; `ROUTES` is the human- and test-readable table of the
//! same set, kept consistent with `parse` by this module's tests.

use crate::browser::TabId;
use crate::terminal::TerminalId;

/// HTTP methods the agent uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
}

impl Method {
    /// Parses an upper-case HTTP method name.
    pub fn from_name(name: &str) -> Option<Method> {
        Some(match name {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            _ => return None,
        })
    }

    /// The upper-case HTTP method name.
    pub fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// How a request or response body travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// No body.
    Empty,
    /// One JSON document.
    Json,
    /// Length-prefixed frames ([`crate::frame`]), streamed.
    Frames,
    /// Raw bytes, streamed.
    Bytes,
}

/// One declared route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteDecl {
    /// The method.
    pub method: Method,
    /// The path, with `{name}` for a parameter segment.
    pub pattern: &'static str,
    /// The request body.
    pub request: Body,
    /// The success response body.
    pub response: Body,
    /// What the route does.
    pub summary: &'static str,
}

const fn decl(
    method: Method,
    pattern: &'static str,
    request: Body,
    response: Body,
    summary: &'static str,
) -> RouteDecl {
    RouteDecl { method, pattern, request, response, summary }
}

use Body::{Bytes, Empty, Frames, Json};
use Method::{Delete, Get, Post, Put};

/// The agent's whole API, in the order of [`Route`]'s variants.
pub const ROUTES: &[RouteDecl] = &[
    decl(Get, "/v1/info", Empty, Json, "agent version, uptime, hostname, cpu and memory"),
    decl(Get, "/v1/terminals", Empty, Json, "list terminals"),
    decl(Post, "/v1/terminals", Json, Json, "create a terminal (a shell on a pty)"),
    decl(Get, "/v1/terminals/{id}", Empty, Json, "one terminal"),
    decl(Delete, "/v1/terminals/{id}", Empty, Json, "kill a terminal's whole session"),
    decl(Post, "/v1/terminals/{id}/resize", Json, Json, "resize a terminal"),
    decl(
        Post,
        "/v1/terminals/{id}/attach",
        Frames,
        Frames,
        "attach: input and resize up, output down",
    ),
    decl(Get, "/v1/terminals/{id}/screen", Empty, Json, "the screen as text, with the cursor"),
    decl(
        Get,
        "/v1/terminals/{id}/output",
        Empty,
        Frames,
        "output still in the scrollback (?from=&to=), as attach frames",
    ),
    decl(
        Post,
        "/v1/terminals/{id}/run",
        Json,
        Json,
        "type a command line at the shell's prompt and wait for its end (OSC 133)",
    ),
    decl(Post, "/v1/terminals/{id}/input", Bytes, Json, "write raw keys to a terminal"),
    decl(Post, "/v1/exec", Frames, Frames, "run a command without a pty"),
    decl(Get, "/v1/files/stat", Empty, Json, "stat a path (?path=)"),
    decl(Get, "/v1/files/list", Empty, Json, "list a directory (?path=&depth=)"),
    decl(Get, "/v1/files/read", Empty, Bytes, "read a file (?path=&offset=&length=)"),
    decl(Put, "/v1/files/write", Bytes, Json, "write a file atomically (?path=&mode=)"),
    decl(Post, "/v1/files/mkdir", Json, Json, "create a directory and its parents"),
    decl(Post, "/v1/files/move", Json, Json, "move or rename"),
    decl(Post, "/v1/files/remove", Json, Json, "remove a file or, when asked, a tree"),
    decl(Get, "/v1/files/tar", Empty, Bytes, "a tar stream of a directory (?path=)"),
    decl(Get, "/v1/ports", Empty, Json, "listening tcp ports"),
    decl(Get, "/v1/ports/events", Empty, Frames, "port open and close events"),
    decl(Post, "/v1/tunnels/{port}", Bytes, Bytes, "a byte tunnel to a listening port"),
    decl(Post, "/v1/audit", Json, Json, "report a tool call of the in-sandbox MCP server"),
    decl(Get, "/v1/audit/events", Empty, Frames, "reported tool calls, then new ones live"),
    decl(Get, "/v1/browser/status", Empty, Json, "is the shared browser running; its tabs"),
    decl(
        Post,
        "/v1/browser/navigate",
        Json,
        Json,
        "load a url in the active tab and wait for its load event",
    ),
    decl(Post, "/v1/browser/click", Json, Json, "click a css selector or a point"),
    decl(Post, "/v1/browser/type", Json, Json, "type text into the focused element or a selector"),
    decl(Get, "/v1/browser/screenshot", Empty, Bytes, "a png of the active tab's viewport"),
    decl(Get, "/v1/browser/text", Empty, Json, "the active tab's visible text, url and title"),
    decl(Get, "/v1/browser/console", Empty, Json, "recent console messages (?since=)"),
    decl(Get, "/v1/browser/tabs", Empty, Json, "list tabs"),
    decl(Post, "/v1/browser/tabs", Json, Json, "open a tab and make it active"),
    decl(Delete, "/v1/browser/tabs/{tab}", Empty, Json, "close a tab"),
    decl(Post, "/v1/browser/tabs/{tab}/activate", Empty, Json, "make a tab the active one"),
    decl(Post, "/v1/browser/input", Json, Json, "replay one input event on the active tab"),
    decl(
        Get,
        "/v1/browser/screencast",
        Empty,
        Frames,
        "jpeg frames of the active tab, newest first (?quality=&max_width=&max_height=)",
    ),
];

/// A parsed request target: one variant per entry of [`ROUTES`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /v1/info`
    Info,
    /// `GET /v1/terminals`
    TerminalList,
    /// `POST /v1/terminals`
    TerminalCreate,
    /// `GET /v1/terminals/{id}`
    TerminalGet(TerminalId),
    /// `DELETE /v1/terminals/{id}`
    TerminalKill(TerminalId),
    /// `POST /v1/terminals/{id}/resize`
    TerminalResize(TerminalId),
    /// `POST /v1/terminals/{id}/attach`
    TerminalAttach(TerminalId),
    /// `GET /v1/terminals/{id}/screen`
    TerminalScreen(TerminalId),
    /// `GET /v1/terminals/{id}/output`
    TerminalOutput(TerminalId),
    /// `POST /v1/terminals/{id}/run`
    TerminalRun(TerminalId),
    /// `POST /v1/terminals/{id}/input`
    TerminalInput(TerminalId),
    /// `POST /v1/exec`
    Exec,
    /// `GET /v1/files/stat`
    FileStat,
    /// `GET /v1/files/list`
    FileList,
    /// `GET /v1/files/read`
    FileRead,
    /// `PUT /v1/files/write`
    FileWrite,
    /// `POST /v1/files/mkdir`
    FileMkdir,
    /// `POST /v1/files/move`
    FileMove,
    /// `POST /v1/files/remove`
    FileRemove,
    /// `GET /v1/files/tar`
    FileTar,
    /// `GET /v1/ports`
    PortList,
    /// `GET /v1/ports/events`
    PortEvents,
    /// `POST /v1/tunnels/{port}`
    Tunnel(u16),
    /// `POST /v1/audit`
    AuditReport,
    /// `GET /v1/audit/events`
    AuditEvents,
    /// `GET /v1/browser/status`
    BrowserStatus,
    /// `POST /v1/browser/navigate`
    BrowserNavigate,
    /// `POST /v1/browser/click`
    BrowserClick,
    /// `POST /v1/browser/type`
    BrowserType,
    /// `GET /v1/browser/screenshot`
    BrowserScreenshot,
    /// `GET /v1/browser/text`
    BrowserText,
    /// `GET /v1/browser/console`
    BrowserConsole,
    /// `GET /v1/browser/tabs`
    BrowserTabs,
    /// `POST /v1/browser/tabs`
    BrowserNewTab,
    /// `DELETE /v1/browser/tabs/{tab}`
    BrowserCloseTab(TabId),
    /// `POST /v1/browser/tabs/{tab}/activate`
    BrowserActivateTab(TabId),
    /// `POST /v1/browser/input`
    BrowserInput,
    /// `GET /v1/browser/screencast`
    BrowserScreencast,
}

impl Route {
    /// Parses a method and a path (without the query) into a declared route.
    pub fn parse(method: Method, path: &str) -> Option<Route> {
        let rest = path.strip_prefix("/v1/")?;
        let segments: Vec<&str> = rest.split('/').collect();
        let terminal = |id: &str| TerminalId::parse(id);
        Some(match (method, segments.as_slice()) {
            (Get, ["info"]) => Route::Info,
            (Get, ["terminals"]) => Route::TerminalList,
            (Post, ["terminals"]) => Route::TerminalCreate,
            (Get, ["terminals", id]) => Route::TerminalGet(terminal(id)?),
            (Delete, ["terminals", id]) => Route::TerminalKill(terminal(id)?),
            (Post, ["terminals", id, "resize"]) => Route::TerminalResize(terminal(id)?),
            (Post, ["terminals", id, "attach"]) => Route::TerminalAttach(terminal(id)?),
            (Get, ["terminals", id, "screen"]) => Route::TerminalScreen(terminal(id)?),
            (Get, ["terminals", id, "output"]) => Route::TerminalOutput(terminal(id)?),
            (Post, ["terminals", id, "run"]) => Route::TerminalRun(terminal(id)?),
            (Post, ["terminals", id, "input"]) => Route::TerminalInput(terminal(id)?),
            (Post, ["exec"]) => Route::Exec,
            (Get, ["files", "stat"]) => Route::FileStat,
            (Get, ["files", "list"]) => Route::FileList,
            (Get, ["files", "read"]) => Route::FileRead,
            (Put, ["files", "write"]) => Route::FileWrite,
            (Post, ["files", "mkdir"]) => Route::FileMkdir,
            (Post, ["files", "move"]) => Route::FileMove,
            (Post, ["files", "remove"]) => Route::FileRemove,
            (Get, ["files", "tar"]) => Route::FileTar,
            (Get, ["ports"]) => Route::PortList,
            (Get, ["ports", "events"]) => Route::PortEvents,
            (Post, ["tunnels", port]) => Route::Tunnel(parse_port(port)?),
            (Post, ["audit"]) => Route::AuditReport,
            (Get, ["audit", "events"]) => Route::AuditEvents,
            (Get, ["browser", "status"]) => Route::BrowserStatus,
            (Post, ["browser", "navigate"]) => Route::BrowserNavigate,
            (Post, ["browser", "click"]) => Route::BrowserClick,
            (Post, ["browser", "type"]) => Route::BrowserType,
            (Get, ["browser", "screenshot"]) => Route::BrowserScreenshot,
            (Get, ["browser", "text"]) => Route::BrowserText,
            (Get, ["browser", "console"]) => Route::BrowserConsole,
            (Get, ["browser", "tabs"]) => Route::BrowserTabs,
            (Post, ["browser", "tabs"]) => Route::BrowserNewTab,
            (Delete, ["browser", "tabs", tab]) => Route::BrowserCloseTab(TabId::parse(tab)?),
            (Post, ["browser", "tabs", tab, "activate"]) => {
                Route::BrowserActivateTab(TabId::parse(tab)?)
            }
            (Post, ["browser", "input"]) => Route::BrowserInput,
            (Get, ["browser", "screencast"]) => Route::BrowserScreencast,
            _ => return None,
        })
    }

    /// This route's declaration.
    pub fn decl(&self) -> &'static RouteDecl {
        let index = match self {
            Route::Info => 0,
            Route::TerminalList => 1,
            Route::TerminalCreate => 2,
            Route::TerminalGet(_) => 3,
            Route::TerminalKill(_) => 4,
            Route::TerminalResize(_) => 5,
            Route::TerminalAttach(_) => 6,
            Route::TerminalScreen(_) => 7,
            Route::TerminalOutput(_) => 8,
            Route::TerminalRun(_) => 9,
            Route::TerminalInput(_) => 10,
            Route::Exec => 11,
            Route::FileStat => 12,
            Route::FileList => 13,
            Route::FileRead => 14,
            Route::FileWrite => 15,
            Route::FileMkdir => 16,
            Route::FileMove => 17,
            Route::FileRemove => 18,
            Route::FileTar => 19,
            Route::PortList => 20,
            Route::PortEvents => 21,
            Route::Tunnel(_) => 22,
            Route::AuditReport => 23,
            Route::AuditEvents => 24,
            Route::BrowserStatus => 25,
            Route::BrowserNavigate => 26,
            Route::BrowserClick => 27,
            Route::BrowserType => 28,
            Route::BrowserScreenshot => 29,
            Route::BrowserText => 30,
            Route::BrowserConsole => 31,
            Route::BrowserTabs => 32,
            Route::BrowserNewTab => 33,
            Route::BrowserCloseTab(_) => 34,
            Route::BrowserActivateTab(_) => 35,
            Route::BrowserInput => 36,
            Route::BrowserScreencast => 37,
        };
        &ROUTES[index]
    }

    /// The path of this route, with its parameters filled in.
    pub fn path(&self) -> String {
        let pattern = self.decl().pattern;
        match self {
            Route::TerminalGet(id)
            | Route::TerminalKill(id)
            | Route::TerminalResize(id)
            | Route::TerminalAttach(id)
            | Route::TerminalScreen(id)
            | Route::TerminalOutput(id)
            | Route::TerminalRun(id)
            | Route::TerminalInput(id) => pattern.replace("{id}", id.as_str()),
            Route::Tunnel(port) => pattern.replace("{port}", &port.to_string()),
            Route::BrowserCloseTab(tab) | Route::BrowserActivateTab(tab) => {
                pattern.replace("{tab}", &tab.to_string())
            }
            _ => pattern.to_owned(),
        }
    }
}

impl Route {
    /// A route of `/v1/terminals`.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Route::TerminalList
                | Route::TerminalCreate
                | Route::TerminalGet(_)
                | Route::TerminalKill(_)
                | Route::TerminalResize(_)
                | Route::TerminalAttach(_)
                | Route::TerminalScreen(_)
                | Route::TerminalOutput(_)
                | Route::TerminalRun(_)
                | Route::TerminalInput(_)
        )
    }

    /// May this route be served on the agent's restricted in-sandbox socket (the one
    /// `guest-agent mcp` uses)? Exactly what the MCP tools need, plus reporting tool calls:
    /// no tunnels, no killing terminals, no attach, no tarballs, and never the
    /// report queue the server reads. A terminal may be created (the tools open the shared
    /// shell when there is none) but not killed. The shared browser's operations and tabs
    /// are served (the browser tools; the sandbox is one trust domain, and Chromium's
    /// DevTools port is reachable from inside anyway), but not a person's side of it: input
    /// replay, the screencast, nor the console no tool reads.
    pub fn guest_allowed(&self) -> bool {
        match self {
            Route::Info
            | Route::TerminalList
            | Route::TerminalCreate
            | Route::TerminalGet(_)
            | Route::TerminalScreen(_)
            | Route::TerminalRun(_)
            | Route::TerminalInput(_)
            | Route::Exec
            | Route::FileStat
            | Route::FileList
            | Route::FileRead
            | Route::FileWrite
            | Route::FileMkdir
            | Route::PortList
            | Route::AuditReport
            | Route::BrowserStatus
            | Route::BrowserNavigate
            | Route::BrowserClick
            | Route::BrowserType
            | Route::BrowserScreenshot
            | Route::BrowserText
            | Route::BrowserTabs
            | Route::BrowserNewTab
            | Route::BrowserCloseTab(_)
            | Route::BrowserActivateTab(_) => true,
            Route::TerminalKill(_)
            | Route::TerminalResize(_)
            | Route::TerminalAttach(_)
            | Route::TerminalOutput(_)
            | Route::FileMove
            | Route::FileRemove
            | Route::FileTar
            | Route::PortEvents
            | Route::Tunnel(_)
            | Route::AuditEvents
            | Route::BrowserConsole
            | Route::BrowserInput
            | Route::BrowserScreencast => false,
        }
    }
}

fn parse_port(text: &str) -> Option<u16> {
    // Only plain decimal: `+80` or `080` are not the same route as `80`.
    if text.is_empty() || text.starts_with('0') || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|port| *port != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fills each pattern's parameters with a sample value.
    pub(crate) fn sample_path(decl: &RouteDecl) -> String {
        decl.pattern.replace("{id}", "7").replace("{port}", "8000").replace("{tab}", "3")
    }

    #[test]
    fn every_declared_route_parses_back_to_its_declaration() {
        for decl in ROUTES {
            let path = sample_path(decl);
            let route = Route::parse(decl.method, &path)
                .unwrap_or_else(|| panic!("{} {} does not parse", decl.method.name(), path));
            assert_eq!(route.decl(), decl, "{path}");
            assert_eq!(route.path(), path);
        }
    }

    #[test]
    fn undeclared_paths_and_methods_do_not_parse() {
        let cases = [
            (Get, "/v1/exec"),
            (Post, "/v1/info"),
            (Get, "/v2/info"),
            (Get, "/v1/info/"),
            (Get, "/v1//info"),
            (Put, "/v1/terminals/7"),
            (Post, "/v1/tunnels/0"),
            (Post, "/v1/tunnels/65536"),
            (Post, "/v1/tunnels/080"),
            (Post, "/v1/tunnels/x"),
            (Get, "/v1/terminals/../info"),
            (Get, "/v1/terminals/7/bogus"),
            (Delete, "/v1/files/remove"),
            (Delete, "/v1/browser/tabs/0"),
            (Delete, "/v1/browser/tabs/abc"),
            (Post, "/v1/browser/tabs/03/activate"),
            (Get, "/v1/browser/tabs/3"),
            (Post, "/v1/browser/screenshot"),
            (Post, "/v1/browser/screencast"),
        ];
        for (method, path) in cases {
            assert_eq!(Route::parse(method, path), None, "{} {path}", method.name());
        }
    }

    #[test]
    fn declared_patterns_are_unique() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.pattern == b.pattern),
                    "{} declared twice",
                    a.pattern
                );
            }
        }
    }
}
