//! RFC 8058 one-click unsubscribe, through the real router and the link of a real
//! mail: a POST of `List-Unsubscribe=One-Click` unsubscribes, a GET does not, the
//! page opts out and back in (with CSRF), and afterwards follow-ups stop while
//! transactional mail still goes.

mod mail_support;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use kujira_domain::person::{OptOutVia, PersonCommand, PersonEvent};
use kujira_scheduler::{CancelReason, UnsubscribeState};
use mail_support::*;
use tower::ServiceExt;
use uuid::Uuid;

fn app(w: &World) -> Router {
    let kit = kujira_web::Kit::new(&w.config, Arc::new(w.clock.clone()));
    kujira_scheduler::router(UnsubscribeState::new(&w.config, w.store.clone(), kit))
}

struct Answer {
    status: StatusCode,
    location: Option<String>,
    cookie: Option<String>,
    body: String,
}

async fn send(app: &Router, req: Request<Body>) -> Answer {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let location = res
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    let cookie = res
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
    let body = res.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        location,
        cookie,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

async fn get(app: &Router, path: &str, cookie: Option<&str>) -> Answer {
    let mut req = Request::get(path);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    send(app, req.body(Body::empty()).unwrap()).await
}

async fn post(app: &Router, path: &str, body: &str, cookie: Option<&str>) -> Answer {
    let mut req =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    send(app, req.body(Body::from(body.to_owned())).unwrap()).await
}

fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf_token\" value=\"")
        .expect("a CSRF field")
        + 25;
    html[at..].split('"').next().unwrap().to_owned()
}

/// Sends `person` a follow-up and returns the path of its List-Unsubscribe link.
async fn link_from_a_real_mail(w: &World, smtp: &SmtpServer, person: Uuid) -> String {
    w.follow_up(person, &format!("k/link/{person}")).await;
    w.mailer(smtp.port).deliver_due().await.unwrap();
    let m = smtp
        .received_by(&address_of(person))
        .pop()
        .expect("the follow-up");
    let header = m.header("List-Unsubscribe").expect("List-Unsubscribe");
    let url = header.trim_start_matches('<').trim_end_matches('>');
    url.strip_prefix("https://kujira.example.jp")
        .expect("the public URL")
        .to_owned()
}

fn opt_events(events: &[PersonEvent]) -> Vec<(&'static str, OptOutVia)> {
    events
        .iter()
        .filter_map(|e| match e {
            PersonEvent::MailOptedOut(o) => Some(("out", o.via)),
            PersonEvent::MailOptedIn(o) => Some(("in", o.via)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_get_changes_nothing_and_a_one_click_post_unsubscribes() {
    let w = World::new().await;
    let smtp = SmtpServer::started();
    let app = app(&w);
    let p = w.person().await;
    let path = link_from_a_real_mail(&w, &smtp, p).await;

    // A scanner (or the person) follows the link: a page with one button, no change.
    let page = get(&app, &path, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("lang=\"ja\""));
    assert_eq!(page.body.matches("<button").count(), 1, "{}", page.body);
    assert!(page.body.contains("配信を停止する"));
    assert!(page.body.contains(&format!("action=\"{path}\"")));
    for _ in 0..3 {
        get(&app, &path, None).await;
    }
    assert!(
        w.person_events(p).await.is_empty(),
        "a GET never unsubscribes"
    );

    // The mail client's one-click POST: no cookie, no CSRF token (RFC 8058).
    let done = post(&app, &path, "List-Unsubscribe=One-Click", None).await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(done.body.contains("配信を停止しました"));
    assert_eq!(
        opt_events(&w.person_events(p).await),
        vec![("out", OptOutVia::OneClick)]
    );
    // Again: nothing more is recorded.
    post(&app, &path, "List-Unsubscribe=One-Click", None).await;
    assert_eq!(w.person_events(p).await.len(), 1);

    // From now on: follow-ups stop, transactional mail still goes.
    w.follow_up(p, "k/after/follow-up").await;
    w.receipt(p, "k/after/receipt").await;
    let r = w.mailer(smtp.port).deliver_due().await.unwrap();
    assert_eq!(r.sent, vec!["k/after/receipt".to_owned()]);
    assert_eq!(r.cancelled, vec!["k/after/follow-up".to_owned()]);
    assert_eq!(
        w.delivery("k/after/follow-up").await.cancel_reason,
        Some(CancelReason::OptedOut)
    );
    // The page now says so, and offers to opt back in.
    let page = get(&app, &path, None).await;
    assert!(page.body.contains("配信を再開する"), "{}", page.body);
}

#[tokio::test]
async fn a_multipart_one_click_post_unsubscribes_too() {
    let w = World::new().await;
    let app = app(&w);
    let p = w.person().await;
    let links = kujira_scheduler::UnsubscribeLinks::from_config(&w.config);
    let path = format!("/unsubscribe/{}", links.token(p));
    let body = "--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n";
    let req = Request::post(&path)
        .header(header::CONTENT_TYPE, "multipart/form-data; boundary=XyZ")
        .body(Body::from(body))
        .unwrap();
    let done = send(&app, req).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(
        opt_events(&w.person_events(p).await),
        vec![("out", OptOutVia::OneClick)]
    );
}

#[tokio::test]
async fn the_page_opts_out_and_back_in_with_its_csrf_token() {
    let w = World::new().await;
    let smtp = SmtpServer::started();
    let app = app(&w);
    let p = w.person().await;
    let path = link_from_a_real_mail(&w, &smtp, p).await;

    let page = get(&app, &path, None).await;
    let cookie = page.cookie.clone().expect("a CSRF cookie");
    let csrf = csrf_of(&page.body);

    // Without the token (a cross-site form): refused, nothing recorded.
    let forged = post(&app, &path, "action=opt_out", Some(&cookie)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.body.contains("送信を受け付けられませんでした"));
    let no_cookie = post(
        &app,
        &path,
        &format!("csrf_token={csrf}&action=opt_out"),
        None,
    )
    .await;
    assert_eq!(no_cookie.status, StatusCode::FORBIDDEN);
    assert!(w.person_events(p).await.is_empty());

    // The button.
    let out = post(
        &app,
        &path,
        &format!("csrf_token={csrf}&action=opt_out"),
        Some(&cookie),
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let shown = out.location.expect("back to the page");
    assert_eq!(shown, format!("{path}?done=out"));
    let page = get(&app, &shown, Some(&cookie)).await;
    assert!(page.body.contains("配信を停止しました。"));
    assert!(page.body.contains("配信を再開する"));
    assert_eq!(page.body.matches("<button").count(), 1);

    // 再開する: opted in again, from the same page.
    let csrf = csrf_of(&page.body);
    let back = post(
        &app,
        &path,
        &format!("csrf_token={csrf}&action=opt_in"),
        Some(&cookie),
    )
    .await;
    assert_eq!(back.status, StatusCode::SEE_OTHER);
    let page = get(&app, &back.location.unwrap(), Some(&cookie)).await;
    assert!(page.body.contains("配信を再開しました。"));
    assert!(page.body.contains("配信を停止する"));
    assert_eq!(
        opt_events(&w.person_events(p).await),
        vec![("out", OptOutVia::Page), ("in", OptOutVia::Page)]
    );

    // Follow-ups go again.
    w.follow_up(p, "k/again").await;
    assert_eq!(
        w.mailer(smtp.port).deliver_due().await.unwrap().sent,
        vec!["k/again".to_owned()]
    );

    // An unknown action is a clear 400 page.
    let csrf = csrf_of(&get(&app, &path, Some(&cookie)).await.body);
    let odd = post(
        &app,
        &path,
        &format!("csrf_token={csrf}&action=delete"),
        Some(&cookie),
    )
    .await;
    assert_eq!(odd.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_bad_forged_or_erased_link_is_a_japanese_404() {
    let w = World::new().await;
    let app = app(&w);
    let p = w.person().await;
    let links = kujira_scheduler::UnsubscribeLinks::from_config(&w.config);
    let token = links.token(p);
    let mut forged = token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let other_secret = kujira_scheduler::UnsubscribeLinks::new(
        "https://kujira.example.jp",
        b"another-secret-another-secret-another",
    )
    .token(p);
    for bad in ["garbage", forged.as_str(), other_secret.as_str()] {
        let path = format!("/unsubscribe/{bad}");
        let page = get(&app, &path, None).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{bad}");
        assert!(page.body.contains("ページが見つかりません"));
        assert!(page.body.contains("lang=\"ja\""));
        let one_click = post(&app, &path, "List-Unsubscribe=One-Click", None).await;
        assert_eq!(one_click.status, StatusCode::NOT_FOUND);
    }
    assert!(w.person_events(p).await.is_empty());

    // An erased person's link leads nowhere either.
    w.on_person(p, PersonCommand::Erase { rule: None }).await;
    let path = format!("/unsubscribe/{token}");
    assert_eq!(get(&app, &path, None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        post(&app, &path, "List-Unsubscribe=One-Click", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Not a form body at all: a clear 415 page.
    let req = Request::post(format!("/unsubscribe/{}", links.token(Uuid::now_v7())))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(
        send(&app, req).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
}
