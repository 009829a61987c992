//! One screen that teaches: at a projector's size and a laptop's, every step of a scenario
//! shows the program line that ran, the diagram's row for it and every socket's card inside
//! the window, with no lane beyond the diagram's scrollable area, and the TCP state diagram
//! marking each socket's state as its card shows it. Checked by the elements' boxes.

use super::*;

/// The sizes a user sees the page at: a projector, then a laptop.
const SIZES: [(i64, i64, &str); 2] = [(1920, 1080, "projector"), (1440, 900, "laptop")];

/// Makes the window's inner size (the page's viewport) exactly `width` × `height`.
async fn set_viewport(client: &Client, width: i64, height: i64) -> Result<(), String> {
    client
        .set_window_size(width as u32, height as u32)
        .await
        .map_err(|e| e.to_string())?;
    let inner = script(client, "return [window.innerWidth, window.innerHeight];").await?;
    let (inner_width, inner_height) = (
        inner[0].as_i64().unwrap_or(width),
        inner[1].as_i64().unwrap_or(height),
    );
    client
        .set_window_size(
            (2 * width - inner_width) as u32,
            (2 * height - inner_height) as u32,
        )
        .await
        .map_err(|e| e.to_string())?;
    let inner = script(client, "return [window.innerWidth, window.innerHeight];").await?;
    if inner != serde_json::json!([width, height]) {
        return Err(format!("the viewport is {inner}, not {width} × {height}"));
    }
    Ok(())
}

/// What is wrong with the page at the step shown, by the elements' boxes; empty when nothing.
const LAYOUT_PROBLEMS: &str = r#"
const problems = [];
const width = window.innerWidth, height = window.innerHeight;
const box = (element) => element.getBoundingClientRect();
const text = (r) => `[${Math.round(r.left)}, ${Math.round(r.top)}, ${Math.round(r.right)}, ${Math.round(r.bottom)}]`;
const inWindow = (r, what) => {
  if (r.top < -0.5 || r.left < -0.5 || r.bottom > height + 0.5 || r.right > width + 0.5)
    problems.push(`${what} ${text(r)} is outside the ${width} × ${height} window`);
};
const within = (r, outer, what, where) => {
  if (r.top < outer.top - 0.5 || r.bottom > outer.bottom + 0.5)
    problems.push(`${what} ${text(r)} is scrolled out of ${where} ${text(outer)}`);
};
if (window.scrollY !== 0 || document.querySelector('main').scrollTop !== 0)
  problems.push('the page is scrolled');
const step = document.querySelector("[data-testid='step-label']").textContent;
const onEvent = step.startsWith('event');
// The program line that made the call shown.
const lines = [...document.querySelectorAll("[data-testid='program'] .line.current")];
if (onEvent && lines.length === 0) problems.push(`no current program line at ${step}`);
for (const line of lines) {
  inWindow(box(line), 'the current program line');
  within(box(line), box(line.closest('pre')), 'the current program line', 'its program box');
}
// The diagram's row for it, below the lanes' titles that stay at the top of its box.
const diagramBox = document.querySelector('.diagram');
inWindow(box(diagramBox), 'the diagram');
const selected = onEvent
  ? document.querySelector("[data-testid='diagram'] rect.selected-row")
  : document.querySelector("[data-testid='diagram'] [data-testid='packet'][data-selected='true'] line");
if (!selected) {
  problems.push(`no highlighted row in the diagram at ${step}`);
} else {
  const visible = box(diagramBox);
  const headers = document.querySelector("[data-testid='lane-headers']");
  const under = { top: visible.top + (headers ? box(headers).height : 0), bottom: visible.bottom - diagramBox.offsetHeight + diagramBox.clientHeight };
  within(box(selected), under, `the diagram's row of ${step}`, "the diagram's box");
}
// Every lane inside the diagram's scrollable area.
const svg = document.querySelector("[data-testid='diagram']");
const svgWidth = Number(svg.getAttribute('width'));
if (diagramBox.scrollWidth + 1 < svgWidth) problems.push(`the diagram is ${svgWidth} wide, its box scrolls to ${diagramBox.scrollWidth}`);
const lifelines = [...svg.querySelectorAll('.lifeline')];
for (const lifeline of lifelines) {
  const x = Number(lifeline.getAttribute('x1'));
  if (x < 0 || x > svgWidth) problems.push(`a lane at x ${x} lies outside the diagram (${svgWidth} wide)`);
  // Up to three sockets (the Simple Server's), every lane is in the box as it stands, with
  // no scrolling sideways: the bytes a send draws come from a lane in view.
  if (lifelines.length <= 3 && x - diagramBox.scrollLeft > diagramBox.clientWidth)
    problems.push(`a lane at x ${x} is beyond the diagram's box, ${diagramBox.clientWidth} wide`);
}
// On a projector, the code and the diagram's labels are at least 14 px, to be read across
// a room.
if (width >= 1900) {
  const small = [...document.querySelectorAll(
    "[data-testid='program'] .line, [data-testid='diagram'] text, [data-testid='lane-headers'] text")]
    .filter(element => parseFloat(getComputedStyle(element).fontSize) < 14)
    .map(element => `${element.getAttribute('class')} '${element.textContent.slice(0, 20)}' at ${getComputedStyle(element).fontSize}`);
  if (small.length) problems.push(`smaller than 14 px: ${small.slice(0, 4).join('; ')}`);
}
// Every socket's card, and its state on the state diagram.
const cards = [...document.querySelectorAll("[data-testid='socket-card']")];
const machine = document.querySelector("[data-testid='state-machine']");
if (!machine) problems.push('no state diagram');
else inWindow(box(machine), 'the state diagram');
const endpoints = document.querySelector('.endpoints');
for (const card of cards) {
  const name = card.dataset.endpoint;
  inWindow(box(card), `the card of ${name}`);
  within(box(card), box(endpoints), `the card of ${name}`, 'the sockets box');
  if (!machine) continue;
  const shown = card.querySelector("[data-testid='state']").textContent;
  const mark = machine.querySelector(`[data-testid='state-mark'][data-endpoint='${name}']`);
  if (!mark) {
    // A socket that is not TCP, or not made yet, is named under the diagram instead.
    if (!machine.querySelector(`[data-testid='state-machine-other'][data-endpoint='${name}']`))
      problems.push(`${name} (${shown}) is neither marked on the state diagram nor named under it`);
    continue;
  }
  if (mark.dataset.shown !== shown) problems.push(`${name}: the card shows ${shown}, the state diagram ${mark.dataset.shown}`);
  if (/^[A-Z_0-9]+$/.test(shown) && mark.dataset.state !== shown) problems.push(`${name}: the card's ${shown} is marked on ${mark.dataset.state}`);
  const node = machine.querySelector(`[data-testid='state-node'][data-state='${mark.dataset.state}']`);
  if (!node || !node.classList.contains('occupied')) problems.push(`${name}: the box ${mark.dataset.state} is not marked`);
}
return problems;
"#;

/// Steps through a scenario's whole run at each size, from its first event to its last
/// (packets included), checking the layout at every step; saves a screenshot of a step in
/// the middle.
async fn every_step_fits_one_screen(
    client: &Client,
    base: SocketAddr,
    scenario: &str,
) -> Result<(), String> {
    for (width, height, name) in SIZES {
        set_viewport(client, width, height).await?;
        goto(
            client,
            &format!("http://{base}/?scenario={scenario}&play=1"),
        )
        .await?;
        wait_for_text(client, "run-status", "finished").await?;
        click(client, "step-first").await?;
        let mut steps = 0;
        let mut states_lit = 0;
        let mut charted = 0;
        let mut queued_steps = 0;
        let mut fates_at_the_end;
        loop {
            let label = wait_for_text(client, "step-label", "of").await?;
            let problems = script(client, LAYOUT_PROBLEMS).await?;
            let problems = problems.as_array().cloned().unwrap_or_default();
            if !problems.is_empty() {
                save_screenshot(client, &format!("layout-{scenario}-{name}-failed.png")).await;
                return Err(format!(
                    "{scenario} at {width} × {height}, {label}: {problems:?}"
                ));
            }
            let lit = script(
                client,
                "return document.querySelectorAll(\"[data-testid='state-machine'] .edge.lit\").length;",
            )
            .await?;
            states_lit += lit.as_u64().unwrap_or(0);
            // A card whose queues held bytes draws them over the run, inside its card.
            let charts = script(
                client,
                "return [...document.querySelectorAll(\"[data-testid='socket-card'] [data-testid='queue-chart']\")]
                   .filter(chart => chart.querySelector('polyline.recv, polyline.send')
                     && chart.getBoundingClientRect().width > 50).length;",
            )
            .await?;
            charted += charts.as_u64().unwrap_or(0);
            // Where the diagram's message arrows are: taken, waiting in a queue, discarded.
            let fates = script(
                client,
                "return [...document.querySelectorAll(\"[data-testid='diagram'] [data-testid='message']\")]
                   .map(line => line.dataset.fate);",
            )
            .await?;
            if fates
                .as_array()
                .is_some_and(|fates| fates.iter().any(|f| f == "queued"))
            {
                queued_steps += 1;
            }
            fates_at_the_end = fates;
            if steps == 12 {
                save_screenshot(client, &format!("layout-{scenario}-{name}.png")).await;
            }
            steps += 1;
            let forward = client
                .find(Locator::Css("[data-testid='step-forward']"))
                .await
                .map_err(|e| e.to_string())?;
            if forward
                .attr("disabled")
                .await
                .map_err(|e| e.to_string())?
                .is_some()
            {
                break;
            }
            forward.click().await.map_err(|e| e.to_string())?;
            // The step is drawn in the next frame.
            wait_until_changed(client, &label).await?;
        }
        if steps < 20 {
            return Err(format!("{scenario}: only {steps} steps"));
        }
        // Every send's bytes were drawn into their receiver's queue before a recv took them,
        // and by the run's end each was taken (the tutorial's programs read all they get).
        if queued_steps == 0 {
            return Err(format!(
                "{scenario} at {name}: no step drew bytes waiting in a queue"
            ));
        }
        let last = fates_at_the_end.as_array().cloned().unwrap_or_default();
        if last.iter().any(|fate| fate != "taken") {
            return Err(format!(
                "{scenario} at {name}: at the end the arrows are {last:?}"
            ));
        }
        // The bytes each client received waited in its receive queue first.
        if charted == 0 {
            return Err(format!("{scenario} at {name}: no card charted its queues"));
        }
        // A run of TCP connections lights transitions on the state diagram as it goes.
        if states_lit == 0 {
            return Err(format!(
                "{scenario} at {name}: no transition was lit in {steps} steps"
            ));
        }
    }
    Ok(())
}

/// Waits until the step label is no longer `label`.
async fn wait_until_changed(client: &Client, label: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let now = client
            .find(Locator::Css("[data-testid='step-label']"))
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        if now != label {
            // And one frame more, for the boxes that scroll to the new step.
            tokio::time::sleep(Duration::from_millis(60)).await;
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("the step stayed at {label}"))
}

#[tokio::test]
#[ignore = "needs dist/ and chromedriver: run scripts/test.sh"]
async fn simple_server_client_fits_one_screen_at_every_step() {
    in_browser(async |client: &Client, base| {
        every_step_fits_one_screen(client, base, "simple-server-client").await
    })
    .await;
}

#[tokio::test]
#[ignore = "needs dist/ and chromedriver: run scripts/test.sh"]
async fn multiple_clients_fits_one_screen_at_every_step() {
    in_browser(async |client: &Client, base| {
        every_step_fits_one_screen(client, base, "multiple-clients").await
    })
    .await;
}
