//! One session's listening ports as data: whole lists from the events socket and the REST
//! API, the ports that opened or closed between two lists, and the race between a REST
//! answer and the socket. Pure, so it is tested natively.

use proto::api::PreviewPort;

/// What changed between two lists.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Change {
    /// Ports in the new list only, by port.
    pub opened: Vec<PreviewPort>,
    /// Ports in the old list only.
    pub closed: Vec<u16>,
}

/// The ports in `new` that `old` does not have, and those of `old` that `new` lost.
pub fn diff(old: &[PreviewPort], new: &[PreviewPort]) -> Change {
    let has = |list: &[PreviewPort], port: u16| list.iter().any(|p| p.port == port);
    Change {
        opened: new.iter().filter(|p| !has(old, p.port)).cloned().collect(),
        closed: old.iter().filter(|p| !has(new, p.port)).map(|p| p.port).collect(),
    }
}

/// A followed session's ports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PortList {
    /// Sorted by port; `None` until the first list arrived.
    ports: Option<Vec<PreviewPort>>,
    /// Lists from the events socket so far.
    updates: u64,
}

impl PortList {
    /// The ports, by port; `None` before the first list.
    pub fn ports(&self) -> Option<&[PreviewPort]> {
        self.ports.as_deref()
    }

    /// One port, while it is listening.
    pub fn port(&self, port: u16) -> Option<&PreviewPort> {
        self.ports.as_deref()?.iter().find(|p| p.port == port)
    }

    /// How many lists the events socket sent: a REST load notes it when it starts.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// The whole list, from the events socket. Nothing opened when it is the first list:
    /// those ports were listening before the tab looked.
    pub fn update(&mut self, ports: Vec<PreviewPort>) -> Change {
        self.updates += 1;
        self.replace(ports)
    }

    /// The REST list, asked for when [`PortList::updates`] was `since`. The socket sends the
    /// whole list after every change, so a list it sent since is at least as new: then
    /// this answer is dropped (it may predate that change).
    pub fn loaded(&mut self, since: u64, ports: Vec<PreviewPort>) -> Change {
        if self.updates != since {
            return Change::default();
        }
        self.replace(ports)
    }

    /// Changes one listed port in place (the answer to a change the tab made, ahead of the
    /// socket's list); a port no longer listed stays closed.
    pub fn edit(&mut self, port: u16, f: impl FnOnce(&mut PreviewPort)) {
        if let Some(slot) = self.ports.as_mut().and_then(|l| l.iter_mut().find(|p| p.port == port))
        {
            f(slot);
        }
    }

    fn replace(&mut self, mut ports: Vec<PreviewPort>) -> Change {
        ports.sort_by_key(|p| p.port);
        ports.dedup_by_key(|p| p.port);
        let change = match &self.ports {
            Some(old) => diff(old, &ports),
            None => Change::default(),
        };
        self.ports = Some(ports);
        change
    }
}

/// What the toast for a newly opened port says (its button says "open preview").
pub fn listening_text(port: u16) -> String {
    format!("Port {port} is listening")
}

/// What a row calls the listening process.
pub fn process_label(port: &PreviewPort) -> &str {
    port.process.as_deref().filter(|name| !name.is_empty()).unwrap_or("unknown process")
}

#[cfg(test)]
mod tests {
    use proto::api::{PreviewPort, ShareLink};

    use super::{Change, PortList, diff, listening_text, process_label};

    fn port(port: u16) -> PreviewPort {
        PreviewPort {
            port,
            process: Some("python3".to_owned()),
            url: format!("http://{port}-s1.preview.localhost:8080/"),
            open_path: format!("/preview/open?session=s1&port={port}"),
            public: false,
            shares: Vec::new(),
        }
    }

    fn ports(list: &[u16]) -> Vec<PreviewPort> {
        list.iter().map(|&p| port(p)).collect()
    }

    fn listed(list: &PortList) -> Vec<u16> {
        list.ports().unwrap_or_default().iter().map(|p| p.port).collect()
    }

    #[test]
    fn a_diff_finds_opened_and_closed_ports() {
        let change = diff(&ports(&[3000, 8000]), &ports(&[8000, 5173, 80]));
        assert_eq!(change.opened.iter().map(|p| p.port).collect::<Vec<_>>(), [5173, 80]);
        assert_eq!(change.closed, [3000]);
        assert_eq!(diff(&ports(&[8000]), &ports(&[8000])), Change::default());
    }

    #[test]
    fn the_first_list_opens_nothing_later_ones_do() {
        let mut list = PortList::default();
        assert_eq!(list.ports(), None);
        // Listening before the tab looked: no toast.
        assert_eq!(list.update(ports(&[8000, 3000])), Change::default());
        assert_eq!(listed(&list), [3000, 8000]);
        let change = list.update(ports(&[3000, 8000, 5173]));
        assert_eq!(change.opened, [port(5173)]);
        assert!(change.closed.is_empty());
        assert_eq!(listed(&list), [3000, 5173, 8000]);
        let change = list.update(ports(&[5173]));
        assert!(change.opened.is_empty());
        assert_eq!(change.closed, [3000, 8000]);
        assert_eq!(list.port(5173), Some(&port(5173)));
        assert_eq!(list.port(8000), None);
    }

    #[test]
    fn a_rest_answer_older_than_a_socket_list_is_dropped() {
        let mut list = PortList::default();
        let since = list.updates();
        // The socket's list arrives while the REST call is out.
        list.update(ports(&[8000]));
        assert_eq!(list.loaded(since, ports(&[])), Change::default());
        assert_eq!(listed(&list), [8000]);
        // A load with nothing in between is taken, and says what changed (a reconnect's
        // resync finds ports that opened while the socket was down).
        let since = list.updates();
        let change = list.loaded(since, ports(&[8000, 9000]));
        assert_eq!(change.opened, [port(9000)]);
        assert_eq!(listed(&list), [8000, 9000]);
    }

    #[test]
    fn the_first_rest_answer_opens_nothing() {
        let mut list = PortList::default();
        assert_eq!(list.loaded(0, ports(&[8000])), Change::default());
        assert_eq!(listed(&list), [8000]);
    }

    #[test]
    fn an_edit_changes_a_listed_port_only() {
        let mut list = PortList::default();
        list.edit(8000, |p| p.public = true);
        assert_eq!(list.ports(), None);
        list.update(ports(&[8000]));
        list.edit(8000, |p| p.public = true);
        list.edit(8000, |p| {
            p.shares.push(ShareLink { id: "sh1".to_owned(), url: None, expires_ms: 5 })
        });
        list.edit(9000, |p| p.public = true);
        let edited = list.port(8000).cloned().unwrap_or_else(|| port(0));
        assert!(edited.public);
        assert_eq!(edited.shares.len(), 1);
        assert_eq!(listed(&list), [8000]);
    }

    #[test]
    fn rows_and_toasts_read_naturally() {
        assert_eq!(listening_text(5173), "Port 5173 is listening");
        assert_eq!(process_label(&port(8000)), "python3");
        let unknown = PreviewPort { process: None, ..port(8000) };
        assert_eq!(process_label(&unknown), "unknown process");
    }
}
