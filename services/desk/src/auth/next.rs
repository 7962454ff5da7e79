//! Where to go after the login: only desk pages of this site (no open redirect).

/// `raw` if it is a relative path to a desk page of this site, else `None`.
///
/// Accepted: `/desk`, `/desk/...`, `/desk?...`. Refused: absolute URLs,
/// protocol-relative `//host`, backslashes (browsers read `/\host` as `//host`),
/// control characters, the login and logout pages themselves, and anything long.
pub fn safe_next(raw: &str) -> Option<String> {
    const MAX: usize = 2000;
    if raw.len() > MAX || raw.contains('\\') || raw.chars().any(char::is_control) {
        return None;
    }
    let rest = raw.strip_prefix("/desk")?;
    if !(rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')) {
        return None;
    }
    let path = raw.split(['?', '#']).next().unwrap_or(raw);
    if path.starts_with("/desk/login") || path.starts_with("/desk/logout") || path.contains("//") {
        return None;
    }
    Some(raw.to_owned())
}

/// `/desk/login`, with `next` when there is one.
pub fn login_url(next: Option<&str>) -> String {
    match next.and_then(safe_next) {
        Some(n) if n != "/desk" => format!(
            "/desk/login?next={}",
            percent_encoding::utf8_percent_encode(&n, percent_encoding::NON_ALPHANUMERIC)
        ),
        _ => "/desk/login".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_desk_paths_of_this_site_are_accepted() {
        for ok in [
            "/desk",
            "/desk/",
            "/desk/users",
            "/desk/cases/0190?tab=timeline",
            "/desk?phase=moved",
            "/desk/kpi.csv?fy=2026",
        ] {
            assert_eq!(safe_next(ok).as_deref(), Some(ok), "{ok}");
        }
        for bad in [
            "",
            "/",
            "https://evil.example/desk",
            "//evil.example/desk",
            "/\\evil.example",
            "/desk\\..\\x",
            "/deskevil",
            "/desk//evil.example",
            "/desk/login",
            "/desk/login?next=/desk",
            "/desk/logout",
            "/desk/\nSet-Cookie:x",
            "desk/users",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
        assert_eq!(safe_next(&format!("/desk/{}", "a".repeat(3000))), None);
    }

    #[test]
    fn the_login_url_carries_next_encoded() {
        assert_eq!(login_url(None), "/desk/login");
        assert_eq!(login_url(Some("/desk")), "/desk/login");
        assert_eq!(
            login_url(Some("/desk/users?x=1&y=2")),
            "/desk/login?next=%2Fdesk%2Fusers%3Fx%3D1%26y%3D2"
        );
        assert_eq!(login_url(Some("https://evil.example")), "/desk/login");
    }
}
