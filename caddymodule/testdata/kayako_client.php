<?php
// kayako_client.php: a LoginShare client that sends and reads the way Kayako
// Classic 4.98.8 does, written from the description in the project's protocol
// reference (no Kayako code is used). The Go tests run it against a real Caddy
// to show that a PHP/libxml2 client reads our answers as we mean them.
//
// Usage:
//   php kayako_client.php URL user|staff [username=V password=V ipaddress=V [interface=V]]
//   php kayako_client.php URL user|staff < fields.json   ({"username": ..., ...})
//
// The request, as Kayako's SWIFT_LoginShare sends it:
//   - POST (CURLOPT_POST and CURLOPT_CUSTOMREQUEST), the URL exactly as given
//     (a query string is kept);
//   - Content-Type: application/x-www-form-urlencoded (no charset) and
//     User-Agent: SWIFT_LoginShare, no other custom header;
//   - body: key=urlencode(value) joined with '&', in the order username,
//     password, ipaddress (user), plus interface (staff); Kayako always sends
//     every one of them, so a field not given is sent empty;
//   - certificates not verified, redirects not followed, 100 s in total;
//   - only the body is collected: status code and headers are ignored, and a
//     transport error leaves the body empty.
//
// The reading, as Kayako's SWIFT_LoginShareUser / SWIFT_LoginShareStaff do:
//   - empty($body) (nothing, or "0")                  -> invalid_data_1
//   - @simplexml_load_string(trim($body)) fails, or
//     !isset($xml->result) (root name never checked)  -> invalid_data_2
//   - (int)$xml->result == 0                          -> failure, message = (string)$xml->message
//   - (int)$xml->result == 1 and the required children are isset():
//       user:  user/usergroup, user/fullname, user/emails
//       staff: staff/team, firstname, lastname, designation, email,
//              mobilenumber, signature                -> success (see below)
//   - anything else                                   -> invalid_data_5
//   - user success: each <email> of the first <emails> is kept when it has no
//     white space and passes the address check, then mb_strtolower()ed; none
//     kept                                            -> no_emails
//     Kayako checks with its bundled EmailAddressValidator::is_email; this
//     client uses filter_var(FILTER_VALIDATE_EMAIL) as the stand-in, so an
//     address the two judge differently may be kept here and not by Kayako.
//   - Kayako throws (an uncaught exception, a generic error page) when a user's
//     trim(fullname) is empty, or a staff firstname or email is empty: that is
//     reported as verdict kayako_exception.
//
// Output: one JSON object on stdout:
//   verdict    success | failure | invalid_data_1 | invalid_data_2 |
//              invalid_data_5 | no_emails | kayako_exception
//   message, usergroup, fullname, designation, phone, organization,
//   organizationtype, team, firstname, lastname, email, mobilenumber,
//   signature: (string) of the element as SimpleXML reads it, null when the
//              element is not there (isset() false). Staff email is given as
//              Kayako uses it: strtolower(trim(...)).
//   emails     the addresses Kayako keeps (user replies), else null
//   mb_strlen  {field: mb_strlen(value)} for every string field above
//   http_status, curl_error, body_base64: diagnostics only (Kayako ignores
//              the first two).
// Exit status 2 on a usage error; 0 whatever the verdict.

declare(strict_types=1);

error_reporting(E_ALL);
ini_set('display_errors', 'stderr');

function usage(string $why): void
{
    fwrite(STDERR, "kayako_client.php: $why\n");
    fwrite(STDERR, "usage: php kayako_client.php URL user|staff [key=value ...]  (or the fields as JSON on stdin)\n");
    exit(2);
}

foreach (['curl', 'SimpleXML', 'mbstring', 'json', 'filter'] as $ext) {
    if (!extension_loaded($ext)) {
        usage("PHP extension $ext is not loaded");
    }
}

if ($argc < 3) {
    usage('URL and kind are required');
}
$url = $argv[1];
$kind = $argv[2];
if ($kind !== 'user' && $kind !== 'staff') {
    usage("kind must be user or staff, not $kind");
}
$order = $kind === 'user'
    ? ['username', 'password', 'ipaddress']
    : ['username', 'password', 'ipaddress', 'interface'];

$given = [];
if ($argc > 3) {
    foreach (array_slice($argv, 3) as $arg) {
        $eq = strpos($arg, '=');
        if ($eq === false) {
            usage("argument $arg is not key=value");
        }
        $given[substr($arg, 0, $eq)] = substr($arg, $eq + 1);
    }
} else {
    $given = json_decode((string)stream_get_contents(STDIN), true, 8, JSON_THROW_ON_ERROR);
    if (!is_array($given)) {
        usage('stdin is not a JSON object');
    }
}
foreach ($given as $k => $v) {
    if (!in_array($k, $order, true) || !is_string($v)) {
        usage("Kayako never sends field $k for a $kind login (or its value is not a string)");
    }
}

// The body: PHP urlencode (space -> '+', all but [A-Za-z0-9_.-] as %XX).
$pairs = [];
foreach ($order as $k) {
    $pairs[] = $k . '=' . urlencode($given[$k] ?? '');
}
$postFields = implode('&', $pairs);

$body = '';
$ch = curl_init();
curl_setopt($ch, CURLOPT_URL, $url);
curl_setopt($ch, CURLOPT_POST, 1);
curl_setopt($ch, CURLOPT_CUSTOMREQUEST, 'POST');
curl_setopt($ch, CURLOPT_POSTFIELDS, $postFields);
curl_setopt($ch, CURLOPT_HTTPHEADER, ['Content-Type: application/x-www-form-urlencoded']);
curl_setopt($ch, CURLOPT_USERAGENT, 'SWIFT_LoginShare');
curl_setopt($ch, CURLOPT_SSL_VERIFYPEER, 0);
curl_setopt($ch, CURLOPT_SSL_VERIFYHOST, 0);
curl_setopt($ch, CURLOPT_TIMEOUT, 100);
// Kayako sets FOLLOWLOCATION only when ini_get('safe_mode') == 'Off', which
// is never true on PHP >= 5.4: redirects are not followed.
curl_setopt($ch, CURLOPT_FOLLOWLOCATION, false);
curl_setopt($ch, CURLOPT_HEADER, false);
curl_setopt($ch, CURLOPT_WRITEFUNCTION, function ($ch, string $chunk) use (&$body): int {
    $body .= $chunk;
    return strlen($chunk);
});
$ok = curl_exec($ch);
$curlError = $ok === false ? curl_error($ch) : null;
$status = (int)curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
curl_close($ch);
if ($ok === false) {
    $body = '';
}

$out = [
    'verdict' => null,
    'message' => null,
    'usergroup' => null,
    'fullname' => null,
    'emails' => null,
    'designation' => null,
    'phone' => null,
    'organization' => null,
    'organizationtype' => null,
    'team' => null,
    'firstname' => null,
    'lastname' => null,
    'email' => null,
    'mobilenumber' => null,
    'signature' => null,
];

// text is (string) of the child when isset(), else null.
function text(SimpleXMLElement $parent, string $name): ?string
{
    return isset($parent->$name) ? (string)$parent->$name : null;
}

// kayakoEmailValid: no white space, then the address check (see the header).
function kayakoEmailValid(string $e): bool
{
    if (preg_match('/\s/', $e) === 1) {
        return false;
    }
    return filter_var($e, FILTER_VALIDATE_EMAIL) !== false;
}

$verdict = null;
$xml = false;
if (empty($body)) {
    $verdict = 'invalid_data_1';
} else {
    $xml = @simplexml_load_string(trim($body));
    if ($xml === false || !isset($xml->result)) {
        $verdict = 'invalid_data_2';
    }
}

if ($verdict === null) {
    $result = (int)$xml->result;
    $out['message'] = text($xml, 'message');
    if ($kind === 'user') {
        $required = isset($xml->user->usergroup) && isset($xml->user->fullname) && isset($xml->user->emails);
        if (isset($xml->user)) {
            foreach (['usergroup', 'fullname', 'designation', 'phone', 'organization', 'organizationtype'] as $f) {
                $out[$f] = text($xml->user, $f);
            }
        }
    } else {
        $required = isset($xml->staff->team) && isset($xml->staff->firstname) && isset($xml->staff->lastname)
            && isset($xml->staff->designation) && isset($xml->staff->email)
            && isset($xml->staff->mobilenumber) && isset($xml->staff->signature);
        if (isset($xml->staff)) {
            foreach (['team', 'firstname', 'lastname', 'designation', 'mobilenumber', 'signature'] as $f) {
                $out[$f] = text($xml->staff, $f);
            }
            if (isset($xml->staff->email)) {
                $out['email'] = strtolower(trim((string)$xml->staff->email));
            }
        }
    }

    if ($result === 0) {
        $verdict = 'failure';
    } elseif ($result === 1 && $required) {
        if ($kind === 'user') {
            $kept = [];
            foreach ($xml->user->emails->email as $e) {
                $e = (string)$e;
                if (kayakoEmailValid($e)) {
                    $kept[] = mb_strtolower($e, 'UTF-8');
                }
            }
            $out['emails'] = $kept;
            if (count($kept) === 0) {
                $verdict = 'no_emails';
            } elseif (trim($out['fullname']) === '') {
                $verdict = 'kayako_exception';
            } else {
                $verdict = 'success';
            }
        } else {
            $verdict = ($out['firstname'] === '' || $out['email'] === '') ? 'kayako_exception' : 'success';
        }
    } else {
        $verdict = 'invalid_data_5';
    }
}
$out['verdict'] = $verdict;

$lengths = [];
foreach ($out as $k => $v) {
    if (is_string($v) && $k !== 'verdict') {
        $lengths[$k] = mb_strlen($v, 'UTF-8');
    }
}
$out['mb_strlen'] = (object)$lengths;
$out['http_status'] = $status;
$out['curl_error'] = $curlError;
$out['body_base64'] = base64_encode($body);

echo json_encode($out, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE), "\n";
