//! The Browser panel's arithmetic, pure so it is tested natively: where on the page a pointer
//! on the canvas is, the viewport a panel asks for, DOM buttons and modifiers as the
//! protocol's, and what "who drives" reads as.

use proto::browser::{Driver, DriverKind, Modifiers, MouseButton, Viewport};

/// Where the page is drawn in a box of `box_w`×`box_h` CSS pixels when a page of
/// `page_w`×`page_h` is fitted inside it whole (the canvas's `object-fit: contain`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fit {
    /// Left edge of the drawn page in the box.
    pub left: f64,
    /// Top edge.
    pub top: f64,
    /// Box pixels per page pixel.
    pub scale: f64,
}

impl Fit {
    /// The fit, or `None` while either size is empty.
    pub fn contain(box_w: f64, box_h: f64, page_w: f64, page_h: f64) -> Option<Fit> {
        if box_w <= 0.0 || box_h <= 0.0 || page_w <= 0.0 || page_h <= 0.0 {
            return None;
        }
        let scale = (box_w / page_w).min(box_h / page_h);
        Some(Fit {
            left: (box_w - page_w * scale) / 2.0,
            top: (box_h - page_h * scale) / 2.0,
            scale,
        })
    }

    /// The page point under box point (`x`, `y`), clamped to the page of `page_w`×`page_h`
    /// (a drag that leaves the picture stays on its edge).
    pub fn to_page(self, x: f64, y: f64, page_w: f64, page_h: f64) -> (f64, f64) {
        let px = ((x - self.left) / self.scale).clamp(0.0, page_w);
        let py = ((y - self.top) / self.scale).clamp(0.0, page_h);
        (px.round(), py.round())
    }
}

/// The viewport a panel of `width`×`height` CSS pixels asks for: its size, within the
/// browser's bounds; `None` while the panel is hidden (no size).
pub fn viewport_for(width: f64, height: f64) -> Option<Viewport> {
    if width < 1.0 || height < 1.0 {
        return None;
    }
    let side = |v: f64| (v.floor() as u32).clamp(Viewport::MIN, Viewport::MAX);
    Some(Viewport { width: side(width), height: side(height) })
}

/// `MouseEvent.button` as the protocol's button.
pub fn button(dom: i16) -> MouseButton {
    match dom {
        1 => MouseButton::Middle,
        2 => MouseButton::Right,
        3 => MouseButton::Back,
        4 => MouseButton::Forward,
        _ => MouseButton::Left,
    }
}

/// Held modifiers, from an event's flags.
pub fn modifiers(alt: bool, ctrl: bool, meta: bool, shift: bool) -> Modifiers {
    Modifiers { alt, ctrl, meta, shift }
}

/// Keys a panel never forwards: they are the outer browser's own (a dead key waiting for the
/// next, an input method composing) or mean nothing to the page.
pub fn forwarded_key(key: &str) -> bool {
    !matches!(key, "" | "Unidentified" | "Dead" | "Process")
}

/// The "who drives" line: `me` is the signed-in person's name.
pub fn driver_text(driver: Option<&Driver>, me: Option<&str>) -> String {
    match driver {
        None => "Nobody has driven this browser yet".to_owned(),
        Some(d) if d.kind == DriverKind::Person && Some(d.name.as_str()) == me => {
            "You are driving".to_owned()
        }
        Some(d) => format!("{} is driving", d.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wider_box_letterboxes_left_and_right() {
        let fit = Fit::contain(1000.0, 400.0, 800.0, 400.0).expect("fit");
        assert_eq!(fit, Fit { left: 100.0, top: 0.0, scale: 1.0 });
        assert_eq!(fit.to_page(100.0, 0.0, 800.0, 400.0), (0.0, 0.0));
        assert_eq!(fit.to_page(500.0, 200.0, 800.0, 400.0), (400.0, 200.0));
        // Left of the picture: its edge.
        assert_eq!(fit.to_page(10.0, 200.0, 800.0, 400.0), (0.0, 200.0));
    }

    #[test]
    fn a_smaller_box_scales_the_page_down() {
        let fit = Fit::contain(640.0, 400.0, 1280.0, 800.0).expect("fit");
        assert_eq!(fit.scale, 0.5);
        assert_eq!(fit.to_page(320.0, 200.0, 1280.0, 800.0), (640.0, 400.0));
        assert_eq!(Fit::contain(0.0, 400.0, 1280.0, 800.0), None);
        assert_eq!(Fit::contain(640.0, 400.0, 0.0, 800.0), None);
    }

    #[test]
    fn the_viewport_follows_the_panel_within_bounds() {
        assert_eq!(viewport_for(900.7, 500.2), Some(Viewport { width: 900, height: 500 }));
        assert_eq!(viewport_for(50.0, 9000.0), Some(Viewport { width: 100, height: 4096 }));
        assert_eq!(viewport_for(0.0, 500.0), None);
    }

    #[test]
    fn buttons_keys_and_drivers_read_as_the_protocol_says() {
        assert_eq!(button(0), MouseButton::Left);
        assert_eq!(button(2), MouseButton::Right);
        assert!(modifiers(false, true, false, true).ctrl);
        assert!(forwarded_key("a") && forwarded_key("Enter"));
        assert!(!forwarded_key("Dead") && !forwarded_key("Process"));
        let person = Driver { kind: DriverKind::Person, name: "ada".to_owned(), at_ms: 1 };
        assert_eq!(driver_text(Some(&person), Some("ada")), "You are driving");
        assert_eq!(driver_text(Some(&person), Some("bob")), "ada is driving");
        let agent = Driver { kind: DriverKind::Agent, name: "agent: claude".to_owned(), at_ms: 2 };
        assert_eq!(driver_text(Some(&agent), Some("ada")), "agent: claude is driving");
        assert_eq!(driver_text(None, None), "Nobody has driven this browser yet");
    }
}
