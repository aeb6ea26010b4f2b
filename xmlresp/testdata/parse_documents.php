<?php
// parse_documents.php FILE: reads documents the way Kayako's LoginShare client
// does, @simplexml_load_string(trim($body)) (libxml2), and reports what
// SimpleXML gives for every element Kayako looks at. libxml_test.go compares
// that with what encoding/xml reads from the same bytes.
//
// Input: FILE has one document per line, base64-encoded (the exact bytes).
// Output: one JSON object per input line, in the same order:
//   parsed   whether simplexml_load_string returned a document
//   error    libxml's first error message when it did not
//   root     the root element's name
//   result, message: (string) of the root's child, null when !isset()
//   result_int: (int)$xml->result, Kayako's reading of the result
//   user, staff: null when !isset(), else {child: (string) or null} for
//            every child Kayako reads
//   emails   null when !isset($xml->user->emails), else (string) of every
//            <email> of the first <emails>, in order
// Every string is base64-encoded so that any byte sequence gets through JSON
// unchanged.

declare(strict_types=1);

error_reporting(E_ALL);
ini_set('display_errors', 'stderr');

if ($argc !== 2) {
    fwrite(STDERR, "usage: php parse_documents.php FILE\n");
    exit(2);
}
if (!extension_loaded('SimpleXML')) {
    fwrite(STDERR, "parse_documents.php: the SimpleXML extension is not loaded\n");
    exit(2);
}
$in = fopen($argv[1], 'rb');
if ($in === false) {
    exit(2);
}

function b64(?string $s): ?string
{
    return $s === null ? null : base64_encode($s);
}

// text is (string) of the child when isset(), else null, base64-encoded.
function text(SimpleXMLElement $parent, string $name): ?string
{
    return isset($parent->$name) ? b64((string)$parent->$name) : null;
}

$userChildren = ['usergroup', 'fullname', 'designation', 'organization', 'organizationtype', 'phone'];
$staffChildren = ['team', 'firstname', 'lastname', 'designation', 'email', 'mobilenumber', 'signature'];

libxml_use_internal_errors(true);
$n = 0;
while (($line = fgets($in)) !== false) {
    $line = rtrim($line, "\n");
    if ($line === '') {
        continue;
    }
    $n++;
    $doc = base64_decode($line, true);
    if ($doc === false) {
        fwrite(STDERR, "parse_documents.php: line $n is not base64\n");
        exit(2);
    }
    libxml_clear_errors();
    $xml = @simplexml_load_string(trim($doc));
    $r = ['parsed' => $xml !== false];
    if ($xml === false) {
        $errors = libxml_get_errors();
        $r['error'] = count($errors) > 0
            ? sprintf('line %d col %d: %s', $errors[0]->line, $errors[0]->column, trim($errors[0]->message))
            : 'no libxml error recorded';
    } else {
        $r['root'] = $xml->getName();
        $r['result'] = text($xml, 'result');
        $r['result_int'] = (int)$xml->result;
        $r['message'] = text($xml, 'message');
        $r['user'] = null;
        $r['emails'] = null;
        $r['staff'] = null;
        if (isset($xml->user)) {
            $u = [];
            foreach ($userChildren as $c) {
                $u[$c] = text($xml->user, $c);
            }
            $r['user'] = $u;
            if (isset($xml->user->emails)) {
                $emails = [];
                foreach ($xml->user->emails->email as $e) {
                    $emails[] = b64((string)$e);
                }
                $r['emails'] = $emails;
            }
        }
        if (isset($xml->staff)) {
            $s = [];
            foreach ($staffChildren as $c) {
                $s[$c] = text($xml->staff, $c);
            }
            $r['staff'] = $s;
        }
    }
    // Only error and root are not base64; a stray byte in them must not stop the run.
    echo json_encode($r, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE), "\n";
}
