<?php
// simplexml_facts.php: what PHP's SimpleXML (libxml2) reads from each of a
// list of LoginShare replies, the way Kayako's LoginShare classes read them:
// @simplexml_load_string(trim($body)), then isset() and (string)/(int) casts
// on the elements Kayako uses. The Go tests compare the kayako package's
// reading with this one.
//
// Input on stdin: a JSON array of base64-encoded bodies. Output: a JSON
// array with one object per body: {"ok": false} when the parse fails, else
// the facts below (null for an element isset() does not see).

declare(strict_types=1);
error_reporting(E_ALL);
ini_set('display_errors', 'stderr');

function s(?SimpleXMLElement $parent, string $name): ?string
{
    return ($parent !== null && isset($parent->$name)) ? (string)$parent->$name : null;
}

$bodies = json_decode((string)stream_get_contents(STDIN), true, 4, JSON_THROW_ON_ERROR);
$out = [];
foreach ($bodies as $b64) {
    $body = base64_decode($b64, true);
    $x = @simplexml_load_string(trim($body));
    if ($x === false) {
        $out[] = ['ok' => false];
        continue;
    }
    $f = ['ok' => true, 'root' => $x->getName(), 'int' => (int)$x->result];
    $f['result'] = s($x, 'result');
    $f['message'] = s($x, 'message');
    $user = isset($x->user) ? $x->user : null;
    $f['user'] = $user !== null;
    foreach (['usergroup', 'fullname', 'designation', 'phone', 'organization', 'organizationtype'] as $n) {
        $f['user_' . $n] = s($user, $n);
    }
    $f['user_organization_empty'] = $user !== null && isset($user->organization) ? empty($user->organization) : null;
    $f['user_emails'] = null;
    if ($user !== null && isset($user->emails)) {
        $f['user_emails'] = [];
        foreach ($user->emails->email as $e) {
            $f['user_emails'][] = (string)$e;
        }
    }
    $staff = isset($x->staff) ? $x->staff : null;
    $f['staff'] = $staff !== null;
    foreach (['team', 'firstname', 'lastname', 'designation', 'email', 'mobilenumber', 'signature'] as $n) {
        $f['staff_' . $n] = s($staff, $n);
    }
    $out[] = $f;
}
echo json_encode($out, JSON_THROW_ON_ERROR | JSON_INVALID_UTF8_SUBSTITUTE), "\n";
