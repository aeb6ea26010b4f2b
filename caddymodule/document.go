package caddymodule

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"unicode"

	"go.uber.org/zap"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
	"github.com/kayako-loginshare/caddy-loginshare/xmlresp"
)

// document maps the identity to a Kayako title and builds the success
// document. A person with no mapped group, or whose profile would give Kayako
// an incomplete document, is refused with not_authorised (the message stays
// the generic one: a distinct message would confirm the password).
func (h *Handler) document(ctx context.Context, endpoint string, id backends.Identity, typed string, a *attempt) ([]byte, backends.Class, string) {
	username := id.Username
	if username == "" {
		username = typed
	}
	var (
		doc []byte
		err error
	)
	if endpoint == endpointUser {
		title := DefaultUserGroup
		if h.userMap == nil {
			backends.Trace(ctx, "mapping", "user_groups omitted: everyone is "+DefaultUserGroup)
		} else {
			t, ok := mapTitle(ctx, "user_groups", h.userMap, id.Groups)
			if !ok {
				return nil, backends.NotAuthorised, "no user_groups line matches the person's groups and no default is set"
			}
			title = t
		}
		a.title = title
		doc, err = xmlresp.UserDocument(xmlresp.User{
			UserGroup:    title,
			FullName:     fullName(id, username),
			Designation:  id.Designation,
			Phone:        id.Phone,
			Organization: id.Organization,
			Emails:       id.Emails,
		})
	} else {
		t, ok := mapTitle(ctx, "staff_teams", h.staffMap, id.Groups)
		if !ok {
			return nil, backends.NotAuthorised, "no staff_teams line matches the person's groups and no default is set"
		}
		a.title = t
		email := ""
		if e := xmlresp.CleanEmails(id.Emails); len(e) > 0 {
			email = e[0]
		}
		doc, err = xmlresp.StaffDocument(xmlresp.Staff{
			Team:         t,
			FirstName:    firstName(id, username),
			LastName:     id.LastName,
			Designation:  id.Designation,
			Email:        email,
			MobileNumber: id.Mobile,
		})
	}
	if err != nil {
		if errors.Is(err, xmlresp.ErrIncomplete) {
			h.logger.Error("directory entry cannot make a complete Kayako document; refusing the login",
				zap.String("endpoint", endpoint), zap.String("username", username), zap.Error(err))
			return nil, backends.NotAuthorised, err.Error()
		}
		return nil, backends.Unavailable, err.Error()
	}
	if dropped := len(id.Emails) - len(xmlresp.CleanEmails(id.Emails)); dropped > 0 {
		h.debug("invalid or duplicate e-mail addresses dropped", zap.String("username", username), zap.Int("dropped", dropped))
	}
	return doc, backends.OK, ""
}

// mapTitle maps groups to a title and tells the story of the decision.
func mapTitle(ctx context.Context, block string, m *compiledMapping, groups []backends.Group) (string, bool) {
	t, line, ok := m.match(groups)
	if backends.Tracing(ctx) {
		switch {
		case ok && line >= 0:
			backends.Trace(ctx, "mapping", block+" line matched", "line", strconv.Itoa(line+1), "group", m.lines[line].key, "title", t)
		case ok:
			backends.Trace(ctx, "mapping", block+": no line matched, default used", "title", t)
		default:
			backends.Trace(ctx, "mapping", block+": no line matched and no default: refused", "groups", strconv.Itoa(len(groups)))
		}
	}
	return t, ok
}

// fullName falls back from the configured attribute to "first last" to the
// username, so Kayako never gets an empty fullname (it throws on one). A value
// that sanitising would leave empty (only control characters, say) counts as
// missing, whichever backend produced it.
func fullName(id backends.Identity, username string) string {
	if n := visible(id.FullName); n != "" {
		return n
	}
	if n := strings.TrimSpace(visible(id.FirstName) + " " + visible(id.LastName)); n != "" {
		return n
	}
	return username
}

// firstName falls back to the first word of the full name, then the username.
func firstName(id backends.Identity, username string) string {
	if n := visible(id.FirstName); n != "" {
		return n
	}
	if f := strings.Fields(visible(id.FullName)); len(f) > 0 {
		return f[0]
	}
	return username
}

// visible is s as the document would carry it, trimmed: empty when nothing
// but control characters (C0, DEL, C1) and spaces is left, which no person
// would recognise as a name.
func visible(s string) string {
	s = strings.TrimSpace(xmlresp.Sanitize(s))
	for _, r := range s {
		if !unicode.IsControl(r) && !unicode.IsSpace(r) {
			return s
		}
	}
	return ""
}
