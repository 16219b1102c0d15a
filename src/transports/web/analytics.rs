//! The support team's analytics pages: `/support/analytics` (the figures from the counters, as
//! SVG charts drawn on the server by plotters with the numbers beside them, and the CSV export)
//! and `/support/declined` (the kept messages the bot could not place, with their marks; only
//! while `[analytics] keep_declined` is on). Signed-in accounts only, as every support page.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{Duration, NaiveDate};
use maud::{PreEscaped, html};
use plotters::prelude::*;
use serde::Deserialize;

use super::App;
use super::pages::support_layout as layout;
use super::security::Failure;
use super::support::page_session;
use crate::service::analytics::{self, Report, Verdict};

/// NHSBSA's trial of an automated assistant on ESR calls resolved about this share without a
/// person: the reference line on the containment chart.
const NHSBSA_CONTAINMENT: f64 = 0.42;
/// Days shown when the page is not asked for others.
const DEFAULT_DAYS: i64 = 14;

#[derive(Deserialize, Default)]
pub struct Range {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

async fn report(web: &App, r: &Range) -> Result<Report, Failure> {
    let today = analytics::day_of(web.clock.now(), web.tz);
    let to = r.to.unwrap_or(today);
    let from = r.from.unwrap_or(to - Duration::days(DEFAULT_DAYS - 1));
    let (svc, tz) = (web.svc.clone(), web.tz);
    let now = web.clock.now();
    Ok(tokio::task::spawn_blocking(move || {
        svc.flush_analytics(now)?;
        analytics::report(&svc.store, tz, from, to)
    })
    .await??)
}

pub async fn page(
    State(web): State<App>,
    headers: HeaderMap,
    Query(r): Query<Range>,
) -> Result<Response, Failure> {
    let (_, s) = match page_session(&web, &headers).await {
        Ok(found) => found,
        Err(r) => return Ok(r),
    };
    let rep = report(&web, &r).await?;
    let days: Vec<String> = rep
        .days
        .iter()
        .map(|d| d.date.format("%d %b").to_string())
        .collect();
    let containment: Vec<f64> = rep
        .days
        .iter()
        .map(|d| d.containment().unwrap_or(0.0) * 100.0)
        .collect();
    let reminders: Vec<f64> = rep.days.iter().map(|d| d.reminders_sent as f64).collect();
    let statuses: Vec<(String, u64)> = rep.escalations_by_status.clone().into_iter().collect();
    let pct = |v: Option<f64>| v.map_or("–".to_string(), |c| format!("{:.0}%", c * 100.0));
    let median = rep.median_time_to_resolve.map_or("–".to_string(), |d| {
        format!("{} h {:02} min", d.num_hours(), d.num_minutes() % 60)
    });
    let csv = format!("/support/analytics.csv?from={}&to={}", rep.from, rep.to);
    let body = html! {
        h1 { "Analytics" }
        p { "From " (rep.from) " to " (rep.to) ". Counts only: no message text. "
            a href=(csv) { "Download as CSV" } }
        div class="figures" {
            section class="figure" id="containment" {
                h2 { "Resolved without a person" }
                p class="number" { strong { (pct(rep.containment())) } " of " (rep.conversations()) " conversations (NHSBSA's trial: about 42%)" }
                (PreEscaped(bars(&days, &containment, Some(NHSBSA_CONTAINMENT * 100.0), 100.0)))
            }
            section class="figure" id="reminders" {
                h2 { "Reminders sent" }
                p class="number" { strong { (rep.reminders_sent()) } }
                (PreEscaped(bars(&days, &reminders, None, 0.0)))
            }
            section class="figure" id="statuses" {
                h2 { "Escalations by status" }
                table { @for (st, n) in &statuses { tr { th { (st) } td { (n) } } } }
                (PreEscaped(bars(
                    &statuses.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
                    &statuses.iter().map(|(_, n)| *n as f64).collect::<Vec<_>>(),
                    None,
                    0.0,
                )))
            }
            section class="figure" id="resolve" {
                h2 { "Median time to resolve" }
                p class="number" { strong { (median) } " over " (rep.resolved) " resolved" }
            }
        }
        h2 { "Messages by outcome" }
        table id="outcomes" { @for (o, n) in rep.outcomes() { tr { th { (o) } td { (n) } } } }
        h2 { "Messages by intent" }
        table id="intents" {
            thead { tr { th { "intent" } @for o in analytics::OUTCOMES { th { (o) } } } }
            tbody {
                @for (intent, row) in rep.intents() {
                    tr { th { (intent) } @for o in analytics::OUTCOMES { td { (row.get(o).copied().unwrap_or(0)) } } }
                }
            }
        }
        @if web.svc.analytics.keep_declined { p { a href="/support/declined" { "Questions the bot could not answer" } } }
    };
    Ok(layout("Analytics", Some(&s), body).into_response())
}

pub async fn csv(
    State(web): State<App>,
    headers: HeaderMap,
    Query(r): Query<Range>,
) -> Result<Response, Failure> {
    if let Err(r) = page_session(&web, &headers).await {
        return Ok(r);
    }
    let rep = report(&web, &r).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"esrbot-{}-{}.csv\"",
                    rep.from, rep.to
                ),
            ),
        ],
        rep.to_csv(),
    )
        .into_response())
}

/// A bar chart as SVG: one bar a label, a dashed reference line at `reference` if given, the
/// y axis up to `top` (or the largest value).
fn bars(labels: &[String], values: &[f64], reference: Option<f64>, top: f64) -> String {
    let mut svg = String::new();
    let drawn = (|| -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::with_string(&mut svg, (440, 220)).into_drawing_area();
        root.fill(&WHITE)?;
        let max = values.iter().copied().fold(top.max(1.0), f64::max);
        let n = labels.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(36)
            .build_cartesian_2d(0f64..n as f64, 0f64..max * 1.05)?;
        let step = (n / 7).max(1);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n.min(8))
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if i.is_multiple_of(step) {
                    labels.get(i).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .draw()?;
        chart.draw_series(values.iter().enumerate().map(|(i, v)| {
            Rectangle::new(
                [(i as f64 + 0.15, 0.0), (i as f64 + 0.85, *v)],
                RGBColor(0, 94, 184).filled(),
            )
        }))?;
        if let Some(r) = reference {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(0.0, r), (n as f64, r)],
                RGBColor(213, 40, 27).stroke_width(2),
            )))?;
        }
        root.present()?;
        Ok(())
    })();
    if let Err(e) = drawn {
        tracing::warn!(error = %e, "a chart could not be drawn");
        return String::new();
    }
    svg
}

pub async fn declined(State(web): State<App>, headers: HeaderMap) -> Result<Response, Failure> {
    let (_, s) = match page_session(&web, &headers).await {
        Ok(found) => found,
        Err(r) => return Ok(r),
    };
    if !web.svc.analytics.keep_declined {
        return Ok((
            StatusCode::NOT_FOUND,
            layout(
                "Not kept",
                Some(&s),
                html! { p { "Message text is not kept: [analytics] keep_declined is off." } },
            ),
        )
            .into_response());
    }
    let (svc, now) = (web.svc.clone(), web.clock.now());
    let kept = tokio::task::spawn_blocking(move || analytics::declined(&svc.store, now)).await??;
    let intents = web.svc.engine().intent_ids();
    let body = html! {
        h1 { "Questions the bot could not answer" }
        p { "Kept for " (analytics::KEEP_DAYS) " days, with passwords and dates of birth cut out." }
        @if kept.is_empty() { p { "None." } }
        table id="declined" {
            @for (id, d) in kept.iter().rev() {
                tr {
                    td { (d.at.with_timezone(&web.tz).format("%Y-%m-%d %H:%M")) }
                    td { (crate::understanding::text::for_display(&d.text, crate::understanding::text::Breaks::Show)) }
                    td { (d.why) }
                    td {
                        @match &d.mark {
                            Some(m) => {
                                @match &m.verdict {
                                    Verdict::ShouldHaveBeen(i) => { "should have been " (i) },
                                    Verdict::RightlyDeclined => { "rightly declined" },
                                }
                                " (" (m.by) ")"
                            },
                            None => {},
                        }
                    }
                    td {
                        form method="post" action={"/support/declined/" (id)} {
                            input type="hidden" name="csrf" value=(s.csrf);
                            label for={"intent-" (id)} { "Should have been" }
                            select id={"intent-" (id)} name="intent" {
                                @for i in &intents { option value=(i) { (i) } }
                            }
                            button type="submit" name="verdict" value="intent" { "Mark" }
                            button type="submit" name="verdict" value="rightly" class="secondary" { "Rightly declined" }
                        }
                    }
                }
            }
        }
    };
    Ok(layout("Declined questions", Some(&s), body).into_response())
}

#[derive(Deserialize, Default)]
pub struct MarkForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    verdict: String,
    #[serde(default)]
    intent: String,
}

pub async fn mark(
    State(web): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<MarkForm>,
) -> Result<Response, Failure> {
    let (_, s) = match page_session(&web, &headers).await {
        Ok(found) => found,
        Err(r) => return Ok(r),
    };
    if !s.csrf_ok(&f.csrf) || !web.svc.analytics.keep_declined {
        return Ok(StatusCode::FORBIDDEN.into_response());
    }
    let verdict = if f.verdict == "rightly" {
        Verdict::RightlyDeclined
    } else {
        Verdict::ShouldHaveBeen(f.intent)
    };
    let (svc, now, by) = (web.svc.clone(), web.clock.now(), s.account.clone());
    let intents = web.svc.engine().intent_ids();
    let marked = tokio::task::spawn_blocking(move || {
        analytics::mark(&svc.store, &id, verdict, &by, &intents, now)
    })
    .await?;
    match marked {
        Ok(()) => Ok(Redirect::to("/support/declined").into_response()),
        Err(analytics::MarkError::Internal(e)) => Err(e.into()),
        Err(e) => Ok((StatusCode::BAD_REQUEST, e.to_string()).into_response()),
    }
}
