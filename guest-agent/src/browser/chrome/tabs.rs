//! One running Chromium's tabs: which is active (what operations, input and the screencast
//! go to), opening, adopting, listing, closing and activating them, and their viewport.

use std::collections::{BTreeMap, HashMap, HashSet};

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::emulation::{
    SetDeviceMetricsOverrideParams, SetFocusEmulationEnabledParams,
};
use chromiumoxide::cdp::browser_protocol::page::BringToFrontParams;
use chromiumoxide::cdp::browser_protocol::target::{
    ActivateTargetParams, CreateTargetParams, GetTargetInfoParams, GetTargetsParams, TargetId,
};
use proto::browser::{PageInfo, TabId, TabInfo, TabList, Viewport};

use super::Chrome;
use crate::browser::cdp_error;
use crate::browser::console;
use crate::error::{Error, Result};

/// The active tab: what operations, input and the screencast go to.
#[derive(Clone)]
pub(crate) struct ActiveTab {
    pub(crate) id: TabId,
    pub(crate) page: Page,
}

pub(super) struct Tab {
    page: Page,
    console: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Tab {
    fn drop(&mut self) {
        if let Some(task) = &self.console {
            task.abort();
        }
    }
}

#[derive(Default)]
pub(super) struct Tabs {
    last_id: u32,
    pub(super) open: BTreeMap<TabId, Tab>,
    active: Option<TabId>,
    /// Tabs closed whose targets the browser may still list for a moment: not adopted.
    closed: HashSet<TargetId>,
}

impl Chrome {
    /// The active tab; adopts a tab the browser has or opens one when there is none.
    pub(crate) async fn active(&self) -> Result<ActiveTab> {
        if let Some(active) = self.current_active() {
            return Ok(active);
        }
        let _changing = self.tab_changes.lock().await;
        self.adopt_pages().await?;
        if let Some(active) = self.current_active() {
            return Ok(active);
        }
        self.open_tab().await
    }

    fn current_active(&self) -> Option<ActiveTab> {
        let tabs = self.tabs();
        let id = tabs.active?;
        tabs.open.get(&id).map(|tab| ActiveTab { id, page: tab.page.clone() })
    }

    /// Opens an `about:blank` tab and makes it the active one.
    pub(crate) async fn new_tab(&self) -> Result<ActiveTab> {
        let _changing = self.tab_changes.lock().await;
        self.open_tab().await
    }

    /// Call with `tab_changes` held.
    async fn open_tab(&self) -> Result<ActiveTab> {
        let page = self
            .browser
            .new_page(CreateTargetParams::new("about:blank"))
            .await
            .map_err(|e| cdp_error("opening a tab", e))?;
        let id = self.register(page.clone());
        self.prepare(id, &page).await;
        self.show(id, &page).await;
        let mut tabs = self.tabs();
        self.set_active(&mut tabs, Some(id));
        Ok(ActiveTab { id, page })
    }

    /// Gives `page` an id (the one it has if it is known).
    fn register(&self, page: Page) -> TabId {
        let mut tabs = self.tabs();
        if let Some((id, _)) =
            tabs.open.iter().find(|(_, tab)| tab.page.target_id() == page.target_id())
        {
            return *id;
        }
        tabs.last_id += 1;
        let id = TabId(tabs.last_id);
        tabs.open.insert(id, Tab { page, console: None });
        id
    }

    /// Sets a new tab up: the shared viewport, focus as in a focused window (headless has
    /// none), and its console collected. Failures are logged: the tab works without.
    async fn prepare(&self, id: TabId, page: &Page) {
        if let Err(e) = self.apply_viewport(page, self.viewport()).await {
            tracing::debug!(tab = %id, "setting the viewport: {e}");
        }
        if let Err(e) = page.execute(SetFocusEmulationEnabledParams::new(true)).await {
            tracing::debug!(tab = %id, "emulating focus: {e}");
        }
        match console::collect(page, id, self.console.clone()).await {
            Ok(task) => match self.tabs().open.get_mut(&id) {
                Some(tab) => tab.console = Some(task),
                None => task.abort(),
            },
            Err(e) => tracing::debug!(tab = %id, "collecting the console: {e}"),
        }
    }

    /// Brings a tab to the front, so it renders (and screencasts) while it is active.
    async fn show(&self, id: TabId, page: &Page) {
        if let Err(e) = page.execute(BringToFrontParams::default()).await {
            tracing::debug!(tab = %id, "bringing to front: {e}");
        }
        let activate = ActivateTargetParams::new(page.target_id().clone());
        if let Err(e) = self.browser.execute(activate).await {
            tracing::debug!(tab = %id, "activating: {e}");
        }
    }

    /// Call with the tabs locked: every change of the active tab goes through here, so the
    /// screencast follows it.
    fn set_active(&self, tabs: &mut Tabs, id: Option<TabId>) {
        let id = id.filter(|id| tabs.open.contains_key(id));
        tabs.active = id;
        let active = id
            .and_then(|id| tabs.open.get(&id).map(|tab| ActiveTab { id, page: tab.page.clone() }));
        self.active.send_replace(active);
    }

    /// Brings the registry in line with the browser: adopts tabs the pages opened
    /// themselves (`window.open`) or that the browser started with, forgets closed ones.
    /// Call with `tab_changes` held.
    async fn adopt_pages(&self) -> Result<()> {
        let pages = self.browser.pages().await.map_err(|e| cdp_error("listing tabs", e))?;
        let new: Vec<Page> = {
            let mut tabs = self.tabs();
            let live: HashSet<&TargetId> = pages.iter().map(Page::target_id).collect();
            tabs.open.retain(|_, tab| live.contains(tab.page.target_id()));
            tabs.closed.retain(|target| live.contains(target));
            if tabs.active.is_some_and(|id| !tabs.open.contains_key(&id)) {
                let newest = tabs.open.keys().next_back().copied();
                self.set_active(&mut tabs, newest);
            }
            pages
                .into_iter()
                .filter(|page| {
                    !tabs.closed.contains(page.target_id())
                        && tabs.open.values().all(|tab| tab.page.target_id() != page.target_id())
                })
                .collect()
        };
        for page in new {
            let id = self.register(page.clone());
            self.prepare(id, &page).await;
        }
        let mut tabs = self.tabs();
        if tabs.active.is_none() {
            let newest = tabs.open.keys().next_back().copied();
            self.set_active(&mut tabs, newest);
        }
        Ok(())
    }

    /// Every tab with its URL and title.
    pub(crate) async fn list(&self) -> Result<TabList> {
        {
            let _changing = self.tab_changes.lock().await;
            self.adopt_pages().await?;
        }
        let targets = self
            .browser
            .execute(GetTargetsParams::default())
            .await
            .map_err(|e| cdp_error("listing tabs", e))?
            .result
            .target_infos;
        let by_target: HashMap<&TargetId, (&str, &str)> =
            targets.iter().map(|t| (&t.target_id, (t.url.as_str(), t.title.as_str()))).collect();
        let tabs = self.tabs();
        let list = tabs
            .open
            .iter()
            .map(|(id, tab)| {
                let (url, title) = by_target.get(tab.page.target_id()).copied().unwrap_or_default();
                TabInfo {
                    id: *id,
                    url: url.to_owned(),
                    title: title.to_owned(),
                    active: tabs.active == Some(*id),
                }
            })
            .collect();
        Ok(TabList { tabs: list, active: tabs.active })
    }

    /// Closes a tab; the newest other one becomes active if it was.
    pub(crate) async fn close(&self, id: TabId) -> Result<()> {
        let _changing = self.tab_changes.lock().await;
        let page = self.tabs().open.get(&id).map(|tab| tab.page.clone());
        let page = page.ok_or_else(|| Error::not_found(format!("no tab {id}")))?;
        let target = page.target_id().clone();
        let closed = page.close().await;
        {
            let mut tabs = self.tabs();
            tabs.open.remove(&id);
            tabs.closed.insert(target);
            if tabs.active == Some(id) || tabs.active.is_none() {
                let newest = tabs.open.keys().next_back().copied();
                self.set_active(&mut tabs, newest);
            }
        }
        if let Some(active) = self.current_active() {
            self.show(active.id, &active.page).await;
        }
        closed.map_err(|e| cdp_error("closing the tab", e))
    }

    /// Makes a tab the active one.
    pub(crate) async fn activate(&self, id: TabId) -> Result<()> {
        let _changing = self.tab_changes.lock().await;
        let page = self.tabs().open.get(&id).map(|tab| tab.page.clone());
        let page = page.ok_or_else(|| Error::not_found(format!("no tab {id}")))?;
        self.show(id, &page).await;
        let mut tabs = self.tabs();
        self.set_active(&mut tabs, Some(id));
        Ok(())
    }

    /// The URL and title of a tab.
    pub(crate) async fn page_info(&self, tab: &ActiveTab) -> Result<PageInfo> {
        let params = GetTargetInfoParams { target_id: Some(tab.page.target_id().clone()) };
        let info = self
            .browser
            .execute(params)
            .await
            .map_err(|e| cdp_error("reading the tab's url and title", e))?
            .result
            .target_info;
        Ok(PageInfo { tab: tab.id, url: info.url, title: info.title })
    }

    /// Resizes every tab's viewport.
    pub(crate) async fn resize(&self, viewport: Viewport) -> Result<()> {
        if !viewport.is_valid() {
            return Err(Error::bad_request(format!(
                "a viewport is {min}..={max} pixels on each side, not {}x{}",
                viewport.width,
                viewport.height,
                min = Viewport::MIN,
                max = Viewport::MAX,
            )));
        }
        *self.viewport.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = viewport;
        let pages: Vec<Page> = self.tabs().open.values().map(|tab| tab.page.clone()).collect();
        for page in pages {
            self.apply_viewport(&page, viewport).await?;
        }
        Ok(())
    }

    async fn apply_viewport(&self, page: &Page, viewport: Viewport) -> Result<()> {
        let params = SetDeviceMetricsOverrideParams::new(
            i64::from(viewport.width),
            i64::from(viewport.height),
            1.0,
            false,
        );
        page.execute(params).await.map_err(|e| cdp_error("setting the viewport", e))?;
        Ok(())
    }
}
