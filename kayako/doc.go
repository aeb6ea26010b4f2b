// Package kayako judges a LoginShare reply exactly as Kayako Classic 4.98.8
// does: Judge takes the reply's status and body and says whether Kayako
// would log the person in, show the endpoint's own failure message, or show
// one of its "Invalid data provided" errors, and which user or staff record
// it would create or update.
//
// The rules come from Kayako's own LoginShare client (SWIFT_LoginShareUser,
// SWIFT_LoginShareStaff, SWIFT_User, SWIFT_Staff, IsEmailValid and its
// bundled is_email validator), read from the 4.98.8 source and described in
// the project's protocol reference; no Kayako code is used. The package
// needs nothing but the standard library, so that `caddy loginshare check`
// and the project's own test suites share one oracle.
//
// What Judge cannot know is Kayako's database: whether a user group or team
// with the returned title exists, and whether the person already has an
// account. Where that changes the outcome, Verdict.Notes says how.
package kayako
