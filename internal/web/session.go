package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parley-list/parley/internal/lists"
	"github.com/parley-list/parley/internal/mailaddr"
	"github.com/parley-list/parley/internal/members"
)

// Members of a private list log in with their address and archive
// password (the IMAP one). The session is a signed cookie holding the
// address and an expiry; each request to a private list checks that the
// address still has an archive password there, so removing a member (or
// their password) ends their access at once. Feed readers cannot log in:
// a member's secret feed URL (/LIST/feed/TOKEN/atom.xml) stands in.

const (
	cookieName = "parley"
	sessionTTL = 30 * 24 * time.Hour
)

func (a *Archive) mac(parts ...string) string {
	m := hmac.New(sha256.New, a.o.Secret)
	m.Write([]byte("parley-web-session"))
	for _, p := range parts {
		m.Write([]byte{0})
		m.Write([]byte(p))
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// visitorKey holds the visitor's address in a request's context: the
// cookie is checked once per request (ServeHTTP), not by every part of
// the answer that needs to know.
type visitorKey struct{}

// session returns the logged-in visitor's address ("" for none).
func (a *Archive) session(r *http.Request) string {
	if v, ok := r.Context().Value(visitorKey{}).(string); ok {
		return v
	}
	return a.cookieSession(r)
}

// cookieSession checks the session cookie.
func (a *Archive) cookieSession(r *http.Request) string {
	c, err := r.Cookie(cookieName)
	if err != nil || len(a.o.Secret) == 0 {
		return ""
	}
	parts := strings.Split(c.Value, ".")
	if len(parts) != 3 {
		return ""
	}
	addr, err := base64.RawURLEncoding.DecodeString(parts[0])
	exp, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || err2 != nil || time.Now().Unix() > exp ||
		!hmac.Equal([]byte(parts[2]), []byte(a.mac(string(addr), parts[1]))) {
		return ""
	}
	return string(addr)
}

// csrf is the token a logged-in visitor's logout form carries.
func (a *Archive) csrf(r *http.Request) string {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return ""
	}
	return a.mac("csrf", c.Value)
}

// readable reports whether the visitor may read list l's archive.
func (a *Archive) readable(r *http.Request, l lists.List) (bool, error) {
	if l.Archive == lists.ArchivePublic {
		return true, nil
	}
	addr := a.session(r)
	if addr == "" {
		return false, nil
	}
	rows, err := members.ArchiveLogins(r.Context(), a.o.DB, addr)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(rows, func(x members.ArchiveLogin) bool { return x.ListID == l.ID }), nil
}

// account serves /_/login and /_/logout.
func (a *Archive) account(w http.ResponseWriter, r *http.Request, what string) {
	switch {
	case what == "login" && r.Method == http.MethodPost:
		a.login(w, r)
	case what == "login":
		a.page(w, r, "login.html", map[string]any{"Title": "Log in", "Next": safeNext(r.URL.Query().Get("next"))})
	case what == "logout" && r.Method == http.MethodPost:
		if r.PostFormValue("csrf") == "" || !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(a.csrf(r))) {
			http.Error(w, "this form is out of date; go back, reload and try again", http.StatusForbidden)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: a.secure(r)})
		http.Redirect(w, r, "/", http.StatusSeeOther)
	default:
		a.notFound(w)
	}
}

// login checks an address and archive password, as IMAP does, at the
// pace IMAP allows.
func (a *Archive) login(w http.ResponseWriter, r *http.Request) {
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	next := safeNext(r.PostFormValue("next"))
	data := map[string]any{"Title": "Log in", "Next": next}
	if a.auth.Blocked(ip, time.Now()) {
		w.WriteHeader(http.StatusTooManyRequests)
		data["Error"] = "Too many failed logins from here; wait a few minutes."
		a.page(w, r, "login.html", data)
		return
	}
	addr, err := mailaddr.Parse(r.PostFormValue("address"))
	var ok []int64
	if err == nil && len(a.o.Secret) > 0 {
		if ok, err = members.ArchiveAccess(r.Context(), a.o.DB, addr.String(), r.PostFormValue("password")); err != nil {
			a.failed(w, r, err)
			return
		}
	}
	if len(ok) == 0 {
		a.auth.Failed(ip, time.Now())
		time.Sleep(a.auth.Delay)
		a.o.Log.Info("web login failed", "event", "web_login_failed", "remote", ip)
		w.WriteHeader(http.StatusUnauthorized)
		data["Error"] = "Wrong address or password. The password is the archive password the list's \"password\" command mails you."
		a.page(w, r, "login.html", data)
		return
	}
	exp := strconv.FormatInt(time.Now().Add(sessionTTL).Unix(), 10)
	value := base64.RawURLEncoding.EncodeToString([]byte(addr.String())) + "." + exp + "." + a.mac(addr.String(), exp)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: value, Path: "/", MaxAge: int(sessionTTL.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: a.secure(r)})
	a.o.Log.Info("web login", "event", "web_login", "remote", ip, "lists", len(ok))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// safeNext keeps a redirect on this site: a path, never "//host".
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	return next
}

// secure reports whether the login cookie is marked Secure.
func (a *Archive) secure(r *http.Request) bool { return r.TLS != nil || a.o.SecureCookies }
