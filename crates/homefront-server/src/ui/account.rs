//! `/account`, for every signed-in user: change my password, through the
//! API's handler (`POST /api/v1/auth/password`). The change ends every
//! session of the account, this one included, so the page then sends the
//! browser to sign in again with the new password.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use super::i18n::Tr;
use super::{Layout, PageResult, Posted, Viewer, refused, see_other};
use crate::AppState;
use crate::api::ApiJson;
use crate::api::sessions::ChangePassword;
use crate::error::ApiError;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(account))
        .route("/account/password", post(change_password))
        .route("/account/logout-all", post(logout_all))
}

#[derive(Template, WebTemplate)]
#[template(path = "account.html")]
struct AccountPage {
    t: Tr,
    l: Layout,
    phone: String,
    error: Option<String>,
    /// The field the error names ("" when none).
    error_field: String,
}

/// `GET /account`.
async fn account(v: Viewer) -> AccountPage {
    AccountPage {
        t: v.t(),
        phone: super::phone_text(&v.actor.user.phone),
        l: v.l,
        error: None,
        error_field: String::new(),
    }
}

/// `POST /account/logout-all`: ends every session of the account, through
/// the API's handler (remembered phones and their alerts included), then
/// the login page says so.
async fn logout_all(
    State(state): State<AppState>,
    p: Posted<super::Empty>,
) -> PageResult<Response> {
    use super::Localize;
    crate::api::sessions::logout_all(State(state), p.actor)
        .await
        .page(p.t)?;
    Ok(super::signed_out(see_other("/login?signed_out=1")))
}

#[derive(Deserialize)]
struct PasswordForm {
    current_password: String,
    new_password: String,
    new_password_repeat: String,
}

/// `POST /account/password`: on success, the session has ended; the
/// cookie is cleared and the login page says to sign in again.
async fn change_password(
    State(state): State<AppState>,
    p: Posted<PasswordForm>,
) -> PageResult<Response> {
    let t = p.t;
    let f = p.form;
    let result = if f.new_password != f.new_password_repeat {
        Err(ApiError::invalid(
            "new_password_repeat",
            "password_mismatch",
            "the two new passwords differ",
        ))
    } else {
        crate::api::sessions::change_password(
            State(state.clone()),
            p.actor.clone(),
            ApiJson(ChangePassword {
                current_password: f.current_password,
                new_password: f.new_password,
            }),
        )
        .await
    };
    match result {
        Ok(_) => {
            let mut resp = see_other("/login?changed=1");
            resp.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_static("hf_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
            );
            Ok(resp)
        }
        Err(mut err) => {
            // The API's code for a wrong current password is the sign-in
            // one ("phone number or password"); here only the password
            // can be wrong.
            if err.code == "invalid_credentials" {
                err.code = "wrong_current_password";
            }
            let field = err.field.clone().unwrap_or_default();
            let l = Layout::new(t, "/account", Some(&p.actor));
            let phone = super::phone_text(&p.actor.user.phone);
            refused(t, err, |m| async move {
                Ok(AccountPage {
                    t,
                    l,
                    phone,
                    error: Some(m),
                    error_field: field,
                })
            })
            .await
        }
    }
}
