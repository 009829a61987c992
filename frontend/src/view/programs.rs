//! The programs of a run, each line numbered, the line that made the call shown highlighted
//! (and kept in view in its box), and the line a paused run makes next.

use leptos::prelude::*;

use crate::model::role_colour;
use crate::perf;
use crate::view::Panel;

/// The marks on the programs' lines at the selected event, by the program's place in the
/// run: each program's highlighted line (`true` for the one that made the selected call)
/// and the line a paused run makes next.
#[derive(Clone, Debug, Default, PartialEq)]
struct LineMarks {
    highlighted: Vec<(usize, u32, bool)>,
    next: Option<(usize, u32)>,
}

/// How one line is marked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LineMark {
    current: bool,
    other: bool,
    upcoming: bool,
}

impl LineMarks {
    fn of(&self, program: usize, number: u32) -> LineMark {
        let (current, other) = match self.highlighted.iter().find(|(p, ..)| *p == program) {
            Some((_, line, own)) if *line == number => (*own, !own),
            _ => (false, false),
        };
        LineMark {
            current,
            other,
            upcoming: self.next == Some((program, number)),
        }
    }
}

/// The programs, side by side on a narrow page and stacked in their column on a wide one.
pub(crate) fn programs(panel: Panel) -> impl IntoView {
    let model = panel.model;
    // The programs are drawn once a run; only the marks on their lines follow the events.
    let program_list = Memo::new(move |_| {
        model.with(|m| {
            m.run
                .as_ref()
                .map(|run| run.programs.clone())
                .unwrap_or_default()
        })
    });
    let marks = Memo::new(move |_| {
        let _span = perf::span("programs");
        model.with(|m| {
            let Some(run) = m.run.as_ref() else {
                return LineMarks::default();
            };
            let program = |role: &str| run.programs.iter().position(|p| p.role == role);
            LineMarks {
                highlighted: run.highlighted_lines(),
                next: run
                    .paused
                    .as_ref()
                    .filter(|_| run.cursor.is_none())
                    .and_then(|next| Some((program(&next.role)?, next.line?))),
            }
        })
    });
    let programs_box: NodeRef<leptos::html::Div> = NodeRef::new();
    // Each program's marked line is kept in view inside its own box, once the marks are drawn.
    Effect::new(move |_| {
        marks.track();
        // Every step, not only a change of the marks: the notices above may have changed
        // height, and the boxes with them.
        panel.position.track();
        panel.packet_step.track();
        let Some(element) = programs_box.get() else {
            return;
        };
        request_animation_frame(move || {
            let Ok(lines) = element.query_selector_all(".line.current, .line.other, .line.next")
            else {
                return;
            };
            for index in 0..lines.length() {
                if let Some(line) = lines
                    .get(index)
                    .and_then(|node| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(node).ok())
                {
                    keep_line_in_view(&line);
                }
            }
        });
    });
    let programs = move || {
        program_list.with(|programs| {
        programs.iter().enumerate().map(|(program_index, program)| {
            let caption = match (&program.file, program.outside) {
                (Some(file), _) => format!("{} — {file}", program.role),
                (None, true) => format!("{}.py — your program: run it with python3", program.role),
                (None, false) => format!("{}.py", program.role),
            };
            let testid = match &program.file {
                Some(file) => format!("code-{}", file.rsplit('/').next().unwrap_or(file)),
                None => format!("code-{}", program.role),
            };
            view! {
                <figure class=format!("program role-{}", role_colour(&program.role)) class:outside=program.outside
                    data-testid="program">
                    <figcaption>{caption}</figcaption>
                    <pre data-testid=testid role="region" aria-label=format!("the program {}", program.role) tabindex="0">
                        {program.code.lines().enumerate().map(|(index, text)| {
                            let number = index as u32 + 1;
                            let mark = move || marks.with(|marks| marks.of(program_index, number));
                            view! {
                                <span class="line" class:current=move || mark().current class:other=move || mark().other
                                    class:next=move || mark().upcoming
                                    data-testid=move || {
                                        let mark = mark();
                                        if mark.upcoming { Some("next-line") } else { mark.current.then_some("current-line") }
                                    }>
                                    <span class="number">{number}</span>{text.to_owned()}
                                    {move || mark().upcoming.then(|| view! { <span class="next-mark">"  ← next"</span> })}
                                    "\n"
                                </span>
                            }
                        }).collect_view()}
                    </pre>
                </figure>
            }
        }).collect::<Vec<_>>()
    })
    };
    view! { <div class="programs" node_ref=programs_box>{programs}</div> }
}

/// Scrolls a line's program box (its `<pre>`), and only that box, so that the line is in view.
fn keep_line_in_view(line: &web_sys::Element) {
    let Some(code) = line.parent_element() else {
        return;
    };
    let (line_box, code_box) = (
        line.get_bounding_client_rect(),
        code.get_bounding_client_rect(),
    );
    let above = line_box.top() - code_box.top();
    let below = line_box.bottom() - code_box.bottom();
    if above < 0.0 || below > 0.0 {
        // To the middle of the box: the lines around it are what a student reads next.
        let middle = above - (code_box.height() - line_box.height()) / 2.0;
        let top = f64::from(code.scroll_top()) + middle;
        code.set_scroll_top(top.max(0.0) as i32);
    }
}
