//! Key names an agent may send (`send_keys`), as the bytes a terminal sends for them (xterm's
//! normal cursor mode, what bash's readline and most programs expect).

/// Every named key, for the tool's description and its errors.
pub const NAMES: &str = "Enter, Tab, Escape, Backspace, Delete, Insert, Space, Up, Down, \
     Left, Right, Home, End, PageUp, PageDown, F1..F12, C-a..C-z (Ctrl), M-<char> (Alt)";

/// The bytes of one named key; `None` for a name it does not know.
pub fn bytes(name: &str) -> Option<Vec<u8>> {
    let fixed: &[u8] = match name.to_ascii_lowercase().as_str() {
        "enter" | "return" => b"\r",
        "tab" => b"\t",
        "escape" | "esc" => b"\x1b",
        "backspace" => b"\x7f",
        "delete" | "del" => b"\x1b[3~",
        "insert" => b"\x1b[2~",
        "space" => b" ",
        "up" => b"\x1b[A",
        "down" => b"\x1b[B",
        "right" => b"\x1b[C",
        "left" => b"\x1b[D",
        "home" => b"\x1b[H",
        "end" => b"\x1b[F",
        "pageup" => b"\x1b[5~",
        "pagedown" => b"\x1b[6~",
        "f1" => b"\x1bOP",
        "f2" => b"\x1bOQ",
        "f3" => b"\x1bOR",
        "f4" => b"\x1bOS",
        "f5" => b"\x1b[15~",
        "f6" => b"\x1b[17~",
        "f7" => b"\x1b[18~",
        "f8" => b"\x1b[19~",
        "f9" => b"\x1b[20~",
        "f10" => b"\x1b[21~",
        "f11" => b"\x1b[23~",
        "f12" => b"\x1b[24~",
        _ => return modified(name),
    };
    Some(fixed.to_vec())
}

/// `C-x` / `Ctrl-x` / `Ctrl+x` and `M-x` / `Alt-x` / `Alt+x`.
fn modified(name: &str) -> Option<Vec<u8>> {
    let (modifier, key) = name.split_once(['-', '+'])?;
    let mut chars = key.chars();
    let (c, None) = (chars.next()?, chars.next()) else { return None };
    match modifier.to_ascii_lowercase().as_str() {
        "c" | "ctrl" | "control" => {
            let control = match c.to_ascii_lowercase() {
                letter @ 'a'..='z' => letter as u8 - b'a' + 1,
                '@' | ' ' => 0,
                '[' => 0x1b,
                '\\' => 0x1c,
                ']' => 0x1d,
                '^' => 0x1e,
                '_' => 0x1f,
                '?' => 0x7f,
                _ => return None,
            };
            Some(vec![control])
        }
        "m" | "alt" | "meta" => {
            let mut bytes = vec![0x1b];
            let mut buf = [0; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            Some(bytes)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::bytes;

    #[test]
    fn named_keys_are_the_bytes_a_terminal_sends() {
        assert_eq!(bytes("Enter").as_deref(), Some(&b"\r"[..]));
        assert_eq!(bytes("C-c").as_deref(), Some(&[3u8][..]));
        assert_eq!(bytes("Ctrl+D").as_deref(), Some(&[4u8][..]));
        assert_eq!(bytes("up").as_deref(), Some(&b"\x1b[A"[..]));
        assert_eq!(bytes("M-b").as_deref(), Some(&b"\x1bb"[..]));
        assert_eq!(bytes("F5").as_deref(), Some(&b"\x1b[15~"[..]));
    }

    #[test]
    fn unknown_names_are_refused() {
        for name in ["Enterr", "C-", "C-ab", "X-c", "", "-"] {
            assert_eq!(bytes(name), None, "{name}");
        }
    }
}
