//! The screencast: frames to every viewer (a stalled one starves no other), following the
//! active tab; screenshots of the viewport.

use super::*;

/// Width and height from a JPEG's start-of-frame segment.
fn jpeg_size(jpeg: &[u8]) -> Option<(u16, u16)> {
    let mut at = 2;
    while at + 9 < jpeg.len() {
        if jpeg[at] != 0xff {
            return None;
        }
        let marker = jpeg[at + 1];
        let length = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        if matches!(marker, 0xc0..=0xc3) {
            let height = u16::from_be_bytes([jpeg[at + 5], jpeg[at + 6]]);
            let width = u16::from_be_bytes([jpeg[at + 7], jpeg[at + 8]]);
            return Some((width, height));
        }
        at += 2 + length;
    }
    None
}

pub(super) fn png_size(png: &[u8]) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let reader = decoder.read_info().expect("the screenshot decodes as a png");
    let info = reader.info();
    (info.width, info.height)
}

pub(super) async fn next_frame(
    stream: &mut guest_agent::client::FrameStream<ScreencastEvent>,
) -> ScreencastFrame {
    match tokio::time::timeout(DEADLINE, stream.next()).await {
        Ok(Ok(Some(ScreencastEvent::Frame(frame)))) => frame,
        Ok(other) => panic!("expected a screencast frame, got {other:?}"),
        Err(_) => panic!("no screencast frame within {DEADLINE:?}"),
    }
}

fn check_jpeg(frame: &ScreencastFrame) {
    let jpeg = &frame.jpeg;
    assert!(jpeg.starts_with(&[0xff, 0xd8, 0xff]), "frame {} is not a jpeg", frame.seq);
    assert!(jpeg.ends_with(&[0xff, 0xd9]), "frame {} is a truncated jpeg", frame.seq);
}

#[tokio::test]
async fn screenshots_are_pngs_of_the_viewport_and_follow_a_resize() {
    let pages = Pages::serve().await;
    let agent = TestAgent::start().await;
    navigate(&agent, &pages.url("index.html")).await;
    let viewport = agent.client.browser_status().await.expect("status").viewport;
    assert_eq!(viewport, Viewport::DEFAULT);

    let png = agent.client.browser_screenshot().await.expect("screenshot");
    assert_eq!(png_size(&png), (viewport.width, viewport.height));

    let resize = InputEvent::Resize { width: 640, height: 480 };
    agent.client.browser_input(&resize).await.expect("resize");
    let png = agent.client.browser_screenshot().await.expect("screenshot");
    assert_eq!(png_size(&png), (640, 480));
    let status = agent.client.browser_status().await.expect("status");
    assert_eq!(status.viewport, Viewport { width: 640, height: 480 });

    let too_small = InputEvent::Resize { width: 10, height: 480 };
    let (code, _) = api_code(agent.client.browser_input(&too_small).await);
    assert_eq!(code, ErrorCode::BadRequest);
}

#[tokio::test]
async fn every_viewer_gets_frames_and_a_stalled_one_starves_no_other() {
    let pages = Pages::serve().await;
    let agent = TestAgent::start().await;
    navigate(&agent, &pages.url("noise.html")).await;
    let viewport = agent.client.browser_status().await.expect("status").viewport;

    let query = ScreencastQuery { quality: Some(80), max_width: Some(640), max_height: None };
    let mut stalled = agent.client.browser_screencast(&query).await.expect("viewer one");
    let mut reading = agent.client.browser_screencast(&query).await.expect("viewer two");

    // Both viewers get frames of the active tab.
    let first = next_frame(&mut stalled).await;
    let other = next_frame(&mut reading).await;
    for frame in [&first, &other] {
        check_jpeg(frame);
        assert_eq!((frame.width, frame.height), (viewport.width, viewport.height));
        let (width, height) = jpeg_size(&frame.jpeg).expect("a jpeg frame header");
        assert!((600..=640).contains(&width), "scaled to max_width: {width}x{height}");
        assert!(frame.timestamp_ms > 0);
    }
    assert!(first.jpeg.len() > 20_000, "noise frames are large: {} bytes", first.jpeg.len());

    // `stalled` stops reading. Its stream fills its flow-control window within a few of
    // these frames; `reading` must keep getting new ones regardless.
    let window_frames = (2 << 20) / first.jpeg.len() + 4;
    let mut last = other.seq;
    let mut received = 0;
    while received < 3 * window_frames + 20 {
        let frame = next_frame(&mut reading).await;
        assert!(frame.seq > last, "frames come newest-first, in order");
        check_jpeg(&frame);
        last = frame.seq;
        received += 1;
    }

    // When the stalled viewer reads again it drains what its window held and then jumps to
    // the newest frame: it got far fewer frames than were made meanwhile (no queue grew).
    let mut seen = 1u64;
    let mut previous = first.seq;
    loop {
        let frame = next_frame(&mut stalled).await;
        assert!(frame.seq > previous);
        previous = frame.seq;
        seen += 1;
        if frame.seq >= last {
            break;
        }
        assert!(seen < 10_000, "the stalled viewer never caught up");
    }
    let made = previous - first.seq + 1;
    assert!(
        seen * 2 < made,
        "a stalled viewer must skip frames: it got {seen} of the {made} made meanwhile"
    );
}

#[tokio::test]
async fn the_screencast_follows_the_active_tab() {
    let pages = Pages::serve().await;
    let agent = TestAgent::start().await;
    let first = navigate(&agent, &pages.url("index.html")).await;
    let mut viewer =
        agent.client.browser_screencast(&ScreencastQuery::default()).await.expect("viewer");
    let frame = next_frame(&mut viewer).await;
    assert_eq!(frame.tab, first.tab);
    check_jpeg(&frame);

    // The tab loads another site (a new renderer process): frames keep coming.
    let other_site = pages.url("noise.html").replace("127.0.0.1", "localhost");
    navigate(&agent, &other_site).await;
    frames_of(&mut viewer, first.tab, 10).await;

    let second = NewTab { url: Some(pages.url("noise.html")) };
    let second = agent.client.browser_new_tab(&second).await.expect("new tab");
    frames_of(&mut viewer, second.id, 10).await;

    agent.client.browser_activate_tab(first.tab).await.expect("activate");
    frames_of(&mut viewer, first.tab, 10).await;
}

/// Reads until `count` frames of `tab` came (frames of the tab before may come first).
async fn frames_of(
    viewer: &mut guest_agent::client::FrameStream<ScreencastEvent>,
    tab: TabId,
    count: usize,
) {
    let start = Instant::now();
    let mut seen = 0;
    while seen < count {
        let frame = next_frame(viewer).await;
        if frame.tab == tab {
            check_jpeg(&frame);
            seen += 1;
        }
        assert!(start.elapsed() < DEADLINE, "only {seen} frames of tab {tab} came");
    }
}
