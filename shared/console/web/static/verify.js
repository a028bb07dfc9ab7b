// verify.js checks Autonomics receipts in the browser, so that an auditor
// trusts their own browser rather than the server that sent the receipts.
//
// It does what the Go verifiers do (packages shared/receipt and
// shared/ledger), with WebCrypto for SHA-256 and Ed25519:
//
//   - each receipt must be exactly a receipt (the members of the wire
//     format, strings and an integer seq in 1…2^53−1), and its hash must be
//     the lowercase hex SHA-256 of its RFC 8785 (JCS) canonical JSON without
//     "hash";
//   - seq, outcome, decided_at, data_digest and action kinds must have
//     possible values;
//   - the receipts of each instance (tenant_id, domain, subject), in seq
//     order, must form a chain: seq 1 links to the zero hash, every later
//     seq is the previous one plus one and links to its hash; every action
//     id is the deterministic id of its index;
//   - the checkpoint must be a signed note (C2SP tlog-checkpoint) with a
//     valid Ed25519 signature by the verifier key, whose name is the
//     checkpoint's origin;
//   - each receipt's inclusion proof (RFC 6962 audit path) must lead from
//     its leaf, SHA-256(0x00 || canonical JSON including "hash"), to the
//     checkpoint's root hash.
//
// API (plain JavaScript, no dependencies):
//
//   autonomicsVerify.verifyReceipts(receipts, options) → Promise<[{hash, ok, reason, problem}]>
//
// receipts is an array of receipt objects (as JSON.parse returns them) or
// of their JSON texts, in any order. options:
//
//   checkpoint  the text of GET /api/v1/checkpoint (the signed note)
//   key         the text of GET /api/v1/checkpoint/key (the verifier key);
//               an auditor should obtain it out of band
//   proofs      the inclusion proofs, as JSON of GET /api/v1/receipts/{hash}/proof:
//               an object or Map from receipt hash to proof, or a function
//               (hash, treeSize) returning the proof (or a Promise of it, or
//               null when there is none); fetch with ?size=treeSize so that
//               the proof is for the checkpoint's tree
//   ledger      false to check only hashes and chains, not the ledger
//   partial     true when the receipts are a window of their chains (a
//               timeline page): an instance's earliest receipt given may
//               have any seq, and only seq 1 must link to the zero hash
//   after       receipts trusted as the predecessors of the window, one per
//               instance at most: the instance's earliest receipt given must
//               follow it (as receipt.NewVerifierAfter in Go)
//
// The answer has one result per receipt, in the order given: hash is the
// receipt's own "hash" member, ok whether every check passed, reason a short
// sentence saying what failed ("" when ok), problem a stable code:
// malformed, hash_mismatch, bad_sequence, broken_link, bad_action_id,
// broken_chain (an earlier receipt of the chain failed), bad_key,
// bad_checkpoint, bad_signature, not_included.
//
// Also exported: canonicalize(value) → string (RFC 8785), receiptHash(receipt)
// → Promise<string>, openCheckpoint(signedNote, key) → Promise<{origin,
// size, root}> (root in base64; it rejects with an Error whose problem
// member is bad_key, bad_checkpoint or bad_signature).
(function (global) {
  "use strict";

  var ZERO_HASH = "0000000000000000000000000000000000000000000000000000000000000000";
  var MAX_SEQ = 9007199254740991; // 2^53 − 1, receipt.MaxSeq
  var MAX_LEAF_BYTES = 65535; // ledger.MaxLeafBytes
  var MAX_SIGNATURES = 100; // note.Open refuses notes with more
  var PROOF_FETCHES = 8; // inclusion proofs fetched at once
  var ACTION_ID_TAG = "autonomics.receipt.action.v1";

  // The members of a receipt, as receipt.Parse knows them; trace_id is
  // optional.
  var RECEIPT_FIELDS = [
    "tenant_id", "domain", "subject", "seq", "execution_id", "event_source",
    "event_type", "correlation_id", "from_state", "to_state", "outcome",
    "reason", "actions", "data_digest", "decided_at", "prev_hash", "hash",
    "trace_id"
  ];
  var ACTION_FIELDS = ["kind", "type", "domain", "subject", "id"];

  var utf8 = new TextEncoder();
  var hexDigits = "0123456789abcdef";

  function own(o, k) {
    return Object.prototype.hasOwnProperty.call(o, k);
  }

  function isPlainObject(v) {
    return v !== null && typeof v === "object" && !Array.isArray(v);
  }

  // wellFormed reports whether s has no lone surrogates, so that it is
  // valid Unicode as RFC 8785 requires.
  function wellFormed(s) {
    if (typeof s.isWellFormed === "function") {
      return s.isWellFormed();
    }
    return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?:^|[^\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
  }

  // quote returns s as a JSON string for messages, cut at 64 characters.
  function quote(s) {
    s = String(s);
    if (s.length > 64) {
      s = s.slice(0, 64) + "…";
    }
    return JSON.stringify(s);
  }

  // canonicalize returns the RFC 8785 (JCS) canonical JSON of a JSON value:
  // members sorted by their names' UTF-16 code units, numbers as ECMAScript
  // writes them, strings escaped as JSON.stringify does, no whitespace. It
  // throws on values JSON cannot carry (undefined, functions, NaN, ±∞) and on
  // strings with lone surrogates.
  function canonicalize(v) {
    if (v === null) {
      return "null";
    }
    switch (typeof v) {
      case "boolean":
        return v ? "true" : "false";
      case "number":
        if (!isFinite(v)) {
          throw new TypeError("JCS: " + v + " is not a JSON number");
        }
        return JSON.stringify(v); // ECMAScript Number::toString; -0 is "0"
      case "string":
        if (!wellFormed(v)) {
          throw new TypeError("JCS: string with a lone surrogate");
        }
        return JSON.stringify(v);
      case "object":
        break;
      default:
        throw new TypeError("JCS: a " + typeof v + " is not a JSON value");
    }
    var out;
    if (Array.isArray(v)) {
      out = "[";
      for (var i = 0; i < v.length; i++) {
        if (i > 0) {
          out += ",";
        }
        out += canonicalize(v[i]);
      }
      return out + "]";
    }
    // Array.prototype.sort without a comparator compares UTF-16 code units.
    var keys = Object.keys(v).sort();
    out = "{";
    for (var j = 0; j < keys.length; j++) {
      if (j > 0) {
        out += ",";
      }
      out += canonicalize(keys[j]) + ":" + canonicalize(v[keys[j]]);
    }
    return out + "}";
  }

  function subtle() {
    var c = global.crypto;
    if (!c || !c.subtle) {
      throw new Error("WebCrypto is unavailable: open the console over https or from localhost");
    }
    return c.subtle;
  }

  function sha256(bytes) {
    return subtle().digest("SHA-256", bytes).then(function (b) {
      return new Uint8Array(b);
    });
  }

  function hex(bytes) {
    var s = "";
    for (var i = 0; i < bytes.length; i++) {
      s += hexDigits[bytes[i] >> 4] + hexDigits[bytes[i] & 15];
    }
    return s;
  }

  function concat(parts) {
    var n = 0;
    parts.forEach(function (p) { n += p.length; });
    var out = new Uint8Array(n);
    var off = 0;
    parts.forEach(function (p) { out.set(p, off); off += p.length; });
    return out;
  }

  function equalBytes(a, b) {
    if (a.length !== b.length) {
      return false;
    }
    var d = 0;
    for (var i = 0; i < a.length; i++) {
      d |= a[i] ^ b[i];
    }
    return d === 0;
  }

  // withoutHash returns a copy of receipt r without its "hash" member.
  function withoutHash(r) {
    var o = {};
    Object.keys(r).forEach(function (k) {
      if (k !== "hash") {
        o[k] = r[k];
      }
    });
    return o;
  }

  // receiptHash returns the hash a receipt should carry: the lowercase hex
  // SHA-256 of its canonical JSON without "hash".
  function receiptHash(r) {
    return Promise.resolve().then(function () {
      return sha256(utf8.encode(canonicalize(withoutHash(r))));
    }).then(hex);
  }

  // shapeProblem mirrors receipt.Parse: it describes why r is not exactly a
  // receipt, or returns "".
  function shapeProblem(r) {
    if (!isPlainObject(r)) {
      return "not a JSON object";
    }
    var keys = Object.keys(r);
    for (var i = 0; i < keys.length; i++) {
      if (RECEIPT_FIELDS.indexOf(keys[i]) < 0) {
        return "unknown member " + quote(keys[i]);
      }
    }
    for (var j = 0; j < RECEIPT_FIELDS.length; j++) {
      var f = RECEIPT_FIELDS[j];
      if (!own(r, f)) {
        if (f === "trace_id") {
          continue;
        }
        return "missing member " + quote(f);
      }
      var v = r[f];
      if (f === "seq") {
        if (typeof v !== "number" || !Number.isInteger(v)) {
          return "seq is not an integer";
        }
        if (v < 1 || v > MAX_SEQ) {
          return "seq " + v + " outside 1…" + MAX_SEQ;
        }
        continue;
      }
      if (f === "actions") {
        if (!Array.isArray(v)) {
          return "actions is not an array";
        }
        for (var a = 0; a < v.length; a++) {
          var p = actionShapeProblem(v[a], a);
          if (p) {
            return p;
          }
        }
        continue;
      }
      if (typeof v !== "string") {
        return f + " is not a string";
      }
      if (!wellFormed(v)) {
        return f + " has a lone surrogate";
      }
      if (f === "trace_id" && !isTraceID(v)) {
        return "trace_id " + quote(v) + " is not 32 lowercase hex digits";
      }
    }
    return "";
  }

  function actionShapeProblem(a, index) {
    var at = "actions[" + index + "]";
    if (!isPlainObject(a)) {
      return at + " is not an object";
    }
    var keys = Object.keys(a);
    for (var i = 0; i < keys.length; i++) {
      if (ACTION_FIELDS.indexOf(keys[i]) < 0) {
        return at + ": unknown member " + quote(keys[i]);
      }
    }
    for (var j = 0; j < ACTION_FIELDS.length; j++) {
      var f = ACTION_FIELDS[j];
      if (!own(a, f)) {
        return at + ": missing member " + quote(f);
      }
      if (typeof a[f] !== "string") {
        return at + "." + f + " is not a string";
      }
      if (!wellFormed(a[f])) {
        return at + "." + f + " has a lone surrogate";
      }
    }
    return "";
  }

  function isHexLower(s, n) {
    return typeof s === "string" && s.length === n && /^[0-9a-f]*$/.test(s);
  }

  function isTraceID(s) {
    return isHexLower(s, 32) && s !== "00000000000000000000000000000000";
  }

  // isUTCTime mirrors the Go check of decided_at: time.Parse with
  // time.RFC3339Nano succeeds and the text ends in "Z". Go's parser takes a
  // one- or two-digit hour and a fraction after '.' or ','.
  function isUTCTime(s) {
    var m = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{1,2}):([0-9]{2}):([0-9]{2})(?:[.,][0-9]+)?Z$/.exec(s);
    if (!m) {
      return false;
    }
    var y = +m[1], mo = +m[2], d = +m[3];
    if (mo < 1 || mo > 12 || +m[4] > 23 || +m[5] > 59 || +m[6] > 59) {
      return false;
    }
    var leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
    var days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1];
    return d >= 1 && d <= days;
  }

  // valueProblem mirrors the malformed check of receipt.Verify.
  function valueProblem(r) {
    if (r.outcome !== "accepted" && r.outcome !== "rejected") {
      return "outcome " + quote(r.outcome) + " is neither accepted nor rejected";
    }
    if (!isHexLower(r.data_digest, 64)) {
      return "data_digest " + quote(r.data_digest) + " is not 64 lowercase hex digits";
    }
    if (!isUTCTime(r.decided_at)) {
      return "decided_at " + quote(r.decided_at) + " is not an RFC 3339 UTC time";
    }
    for (var i = 0; i < r.actions.length; i++) {
      var k = r.actions[i].kind;
      if (k !== "event" && k !== "actuate") {
        return "actions[" + i + "].kind " + quote(k) + " is neither event nor actuate";
      }
    }
    return "";
  }

  // field appends the uvarint length of bytes and bytes to parts.
  function field(parts, bytes) {
    var n = bytes.length;
    var v = [];
    while (n >= 0x80) {
      v.push((n & 0x7f) | 0x80);
      n = Math.floor(n / 128);
    }
    v.push(n);
    parts.push(new Uint8Array(v), bytes);
  }

  // actionID returns receipt.ActionID(r, index): the first 16 bytes, in
  // hex, of the SHA-256 of the receipt's chain position.
  function actionID(r, index) {
    var parts = [];
    [ACTION_ID_TAG, r.tenant_id, r.domain, r.subject, String(r.seq), r.prev_hash,
      r.execution_id, String(index)].forEach(function (s) {
      field(parts, utf8.encode(s));
    });
    return sha256(concat(parts)).then(function (sum) {
      return hex(sum.subarray(0, 16));
    });
  }

  // base64Decode decodes standard base64 with padding as Go's
  // base64.StdEncoding does (which skips '\r' and '\n'); null when invalid.
  function base64Decode(s) {
    if (typeof s !== "string") {
      return null;
    }
    s = s.replace(/[\r\n]/g, "");
    if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) {
      return null;
    }
    var bin;
    try {
      bin = global.atob(s);
    } catch (e) {
      return null;
    }
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) {
      out[i] = bin.charCodeAt(i);
    }
    return out;
  }

  function base64Encode(bytes) {
    var bin = "";
    for (var i = 0; i < bytes.length; i++) {
      bin += String.fromCharCode(bytes[i]);
    }
    return global.btoa(bin);
  }

  // decodeHash decodes a tlog.Hash as JSON carries it: 44 characters of
  // base64 ending in '=' for 32 bytes; null when invalid.
  function decodeHash(s) {
    if (typeof s !== "string" || s.length !== 44 || s[43] !== "=") {
      return null;
    }
    var b = base64Decode(s);
    return b && b.length === 32 ? b : null;
  }

  // goSpace matches the characters Go's unicode.IsSpace accepts.
  var goSpace = "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
  var goTrim = new RegExp("^[" + goSpace + "]+|[" + goSpace + "]+$", "g");
  var hasGoSpace = new RegExp("[" + goSpace + "]");

  // isValidName mirrors note's key name rule: not empty, no spaces, no '+'.
  function isValidName(name) {
    return name !== "" && wellFormed(name) && !hasGoSpace.test(name) && name.indexOf("+") < 0;
  }

  function fail(problem, message) {
    var e = new Error(message);
    e.problem = problem;
    return e;
  }

  // cut returns s split at the first sep, as Go's strings.Cut.
  function cut(s, sep) {
    var i = s.indexOf(sep);
    return i < 0 ? [s, ""] : [s.slice(0, i), s.slice(i + sep.length)];
  }

  // parseVerifierKey mirrors note.NewVerifier for an Ed25519 verifier key
  // "<name>+<hash>+<base64(0x01 || 32-byte public key)>".
  function parseVerifierKey(key) {
    if (typeof key !== "string") {
      return Promise.reject(fail("bad_key", "bad verifier key: no verifier key given"));
    }
    key = key.replace(goTrim, "");
    var a = cut(key, "+");
    var b = cut(a[1], "+");
    var name = a[0], hash16 = b[0];
    var raw = base64Decode(b[1]);
    if (hash16.length !== 8 || !/^[0-9a-fA-F]{8}$/.test(hash16) || !raw || !isValidName(name) || raw.length === 0) {
      return Promise.reject(fail("bad_key", "bad verifier key: it is not <name>+<hash>+<base64 key>"));
    }
    var hash = parseInt(hash16, 16);
    return sha256(concat([utf8.encode(name + "\n"), raw])).then(function (sum) {
      if (((sum[0] << 24) | (sum[1] << 16) | (sum[2] << 8) | sum[3]) >>> 0 !== hash) {
        throw fail("bad_key", "bad verifier key: its hash does not match the key");
      }
      if (raw[0] !== 1 || raw.length !== 33) {
        throw fail("bad_key", "bad verifier key: not an Ed25519 key");
      }
      return subtle().importKey("raw", raw.slice(1), { name: "Ed25519" }, false, ["verify"]).then(function (k) {
        return { name: name, hash: hash, key: k };
      }, function (e) {
        throw fail("bad_key", "bad verifier key: this browser cannot use Ed25519 keys (" + e.message + ")");
      });
    });
  }

  // noteText returns the signed note as a string, or throws.
  function noteText(signed) {
    if (typeof signed === "string") {
      return signed;
    }
    if (signed instanceof ArrayBuffer || ArrayBuffer.isView(signed)) {
      try {
        return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(signed);
      } catch (e) {
        throw fail("bad_checkpoint", "bad checkpoint: not valid UTF-8");
      }
    }
    throw fail("bad_checkpoint", "bad checkpoint: no checkpoint given");
  }

  // openNote mirrors note.Open with one known verifier v: it returns the
  // note's text once a signature by v verified.
  function openNote(msg, v) {
    if (!wellFormed(msg) || /[\u0000-\u0009\u000b-\u001f]/.test(msg)) {
      return Promise.reject(fail("bad_checkpoint", "bad checkpoint: not a signed note"));
    }
    var split = msg.lastIndexOf("\n\n");
    if (split < 0) {
      return Promise.reject(fail("bad_checkpoint", "bad checkpoint: not a signed note"));
    }
    var text = msg.slice(0, split + 1);
    var sigs = msg.slice(split + 2);
    if (sigs.length === 0 || sigs[sigs.length - 1] !== "\n") {
      return Promise.reject(fail("bad_checkpoint", "bad checkpoint: not a signed note"));
    }
    var lines = sigs.slice(0, -1).split("\n");
    var mine = [];
    for (var i = 0; i < lines.length; i++) {
      var line = lines[i];
      if (line.slice(0, 2) !== "\u2014 ") {
        return Promise.reject(fail("bad_checkpoint", "bad checkpoint: not a signed note"));
      }
      var nb = cut(line.slice(2), " ");
      var sig = base64Decode(nb[1]);
      if (!sig || !isValidName(nb[0]) || nb[1] === "" || sig.length < 5) {
        return Promise.reject(fail("bad_checkpoint", "bad checkpoint: not a signed note"));
      }
      if (i + 1 > MAX_SIGNATURES) {
        return Promise.reject(fail("bad_checkpoint", "bad checkpoint: too many signatures"));
      }
      var hash = ((sig[0] << 24) | (sig[1] << 16) | (sig[2] << 8) | sig[3]) >>> 0;
      if (nb[0] === v.name && hash === v.hash) {
        mine.push(sig.slice(4));
      }
    }
    if (mine.length === 0) {
      return Promise.reject(fail("bad_signature", "bad checkpoint signature: no signature by key " + v.name));
    }
    var body = utf8.encode(text);
    // note.Open verifies the first signature by a known key and skips
    // repeated ones.
    return subtle().verify({ name: "Ed25519" }, v.key, mine[0], body).then(function (ok) {
      return ok;
    }, function () {
      return false;
    }).then(function (ok) {
      if (!ok) {
        throw fail("bad_signature", "bad checkpoint signature: the signature by key " + v.name + " is invalid");
      }
      return text;
    });
  }

  // parseCheckpoint mirrors ledger.ParseCheckpoint.
  function parseCheckpoint(text) {
    var bad = function (m) { return fail("bad_checkpoint", "bad checkpoint: " + m); };
    if (text[text.length - 1] !== "\n") {
      throw bad("its text does not end with a newline");
    }
    var lines = text.slice(0, -1).split("\n");
    if (lines.length < 3) {
      throw bad("it has " + lines.length + " lines, want origin, size and root hash");
    }
    for (var i = 0; i < lines.length; i++) {
      if (lines[i] === "") {
        throw bad("line " + (i + 1) + " is empty");
      }
    }
    if (!/^(0|[1-9][0-9]*)$/.test(lines[1])) {
      throw bad("tree size " + quote(lines[1]) + " is not a decimal integer without leading zeros");
    }
    var size = Number(lines[1]);
    if (!Number.isSafeInteger(size)) {
      throw bad("tree size " + lines[1] + " is too large");
    }
    var root = base64Decode(lines[2]);
    if (!root || root.length !== 32) {
      throw bad("root hash " + quote(lines[2]) + " is not the base64 of 32 bytes");
    }
    return { origin: lines[0], size: size, root: root };
  }

  // open mirrors ledger.OpenCheckpoint: the checkpoint's text, once its
  // signature by key verified, with the key's name as its origin.
  function open(signed, key) {
    return parseVerifierKey(key).then(function (v) {
      return openNote(noteText(signed), v).then(function (text) {
        var cp = parseCheckpoint(text);
        if (cp.origin !== v.name) {
          throw fail("bad_checkpoint", "bad checkpoint: its origin " + quote(cp.origin) + " is not the key name " + quote(v.name));
        }
        return cp;
      });
    });
  }

  function openCheckpoint(signed, key) {
    return open(signed, key).then(function (cp) {
      return { origin: cp.origin, size: cp.size, root: base64Encode(cp.root) };
    });
  }

  function nodeHash(left, right) {
    return sha256(concat([new Uint8Array([1]), left, right]));
  }

  // maxpow2 returns the largest power of two below n (n ≥ 2), as tlog's.
  function maxpow2(n) {
    var k = 1;
    while (k * 2 < n) {
      k *= 2;
    }
    return k;
  }

  // runRecordProof mirrors tlog's: the root of the tree lo…hi-1 computed
  // from leaf n's hash and the audit path p, or null when p does not fit.
  function runRecordProof(p, lo, hi, n, leaf) {
    if (lo + 1 === hi) {
      return Promise.resolve(p.length === 0 ? leaf : null);
    }
    if (p.length === 0) {
      return Promise.resolve(null);
    }
    var k = maxpow2(hi - lo);
    var last = p[p.length - 1];
    var rest = p.slice(0, -1);
    if (n < lo + k) {
      return runRecordProof(rest, lo, lo + k, n, leaf).then(function (th) {
        return th && nodeHash(th, last);
      });
    }
    return runRecordProof(rest, lo + k, hi, n, leaf).then(function (th) {
      return th && nodeHash(last, th);
    });
  }

  // proofProblem mirrors ledger.VerifyInclusion for a receipt whose own
  // checks passed: it describes why proof p does not prove r to be in the
  // tree of checkpoint cp, or returns "".
  function proofProblem(r, p, cp) {
    var no = function (m) { return "not in ledger: " + m; };
    if (p === null || p === undefined) {
      return Promise.resolve(no("no inclusion proof"));
    }
    // An empty audit path (the proof of a tree's only leaf) may be null.
    var audit = isPlainObject(p) && (p.proof === null || p.proof === undefined) ? [] : p.proof;
    if (!isPlainObject(p) || !Number.isSafeInteger(p.index) || !Number.isSafeInteger(p.tree_size) || !Array.isArray(audit) ||
      (own(p, "receipt_hash") && typeof p.receipt_hash !== "string") ||
      (own(p, "root_hash") && !decodeHash(p.root_hash)) ||
      (own(p, "receipt") && shapeProblem(p.receipt) !== "")) {
      return Promise.resolve(no("the inclusion proof is malformed"));
    }
    var path = [];
    for (var i = 0; i < audit.length; i++) {
      var h = decodeHash(audit[i]);
      if (!h) {
        return Promise.resolve(no("the inclusion proof is malformed"));
      }
      path.push(h);
    }
    var leaf = utf8.encode(canonicalize(r));
    if (leaf.length > MAX_LEAF_BYTES) {
      return Promise.resolve(no("the receipt is " + leaf.length + " bytes, the log holds at most " + MAX_LEAF_BYTES));
    }
    if (p.receipt_hash && p.receipt_hash !== r.hash) {
      return Promise.resolve(no("the proof is for receipt " + quote(p.receipt_hash)));
    }
    if (p.receipt && p.receipt.hash && p.receipt.hash !== r.hash) {
      return Promise.resolve(no("the proof carries receipt " + quote(p.receipt.hash)));
    }
    if (p.tree_size !== cp.size) {
      return Promise.resolve(no("the proof is for tree size " + p.tree_size + ", the checkpoint has size " + cp.size));
    }
    if (p.index < 0 || p.index >= cp.size) {
      return Promise.resolve(no("index " + p.index + " is outside the tree of size " + cp.size));
    }
    return sha256(concat([new Uint8Array([0]), leaf])).then(function (lh) {
      return runRecordProof(path, 0, cp.size, p.index, lh);
    }).then(function (root) {
      return root && equalBytes(root, cp.root) ? "" : no("the inclusion proof does not lead to the checkpoint's root");
    });
  }

  // proofSource returns a function hash → Promise<proof or null>.
  function proofSource(proofs, size) {
    if (typeof proofs === "function") {
      return function (hash) {
        return Promise.resolve().then(function () { return proofs(hash, size); });
      };
    }
    if (proofs instanceof Map) {
      return function (hash) { return Promise.resolve(proofs.has(hash) ? proofs.get(hash) : null); };
    }
    if (isPlainObject(proofs)) {
      return function (hash) { return Promise.resolve(own(proofs, hash) ? proofs[hash] : null); };
    }
    return function () { return Promise.resolve(null); };
  }

  // pool runs task(item) for every item, at most n at once.
  function pool(items, n, task) {
    var next = 0;
    function worker() {
      if (next >= items.length) {
        return Promise.resolve();
      }
      var item = items[next++];
      return Promise.resolve().then(function () { return task(item); }).then(worker);
    }
    var workers = [];
    for (var i = 0; i < Math.min(n, items.length); i++) {
      workers.push(worker());
    }
    return Promise.all(workers);
  }

  function instanceKey(r) {
    return JSON.stringify([r.tenant_id, r.domain, r.subject]);
  }

  // check returns the verification state of one receipt: its own checks
  // (shape, hash, values) done, its action ids computed for the chain check.
  function check(input, index) {
    var e = { index: index, receipt: null, problem: "", reason: "", ids: [], hash: "" };
    var r = input;
    if (typeof input === "string") {
      try {
        r = JSON.parse(input);
      } catch (err) {
        e.problem = "malformed";
        e.reason = "malformed: not JSON";
        return Promise.resolve(e);
      }
    }
    if (isPlainObject(r) && typeof r.hash === "string") {
      e.hash = r.hash;
    }
    var shape = shapeProblem(r);
    if (shape) {
      e.problem = "malformed";
      e.reason = "malformed: " + shape;
      // A receipt whose place is readable still holds its place in its chain.
      if (isPlainObject(r) && typeof r.tenant_id === "string" && typeof r.domain === "string" &&
        typeof r.subject === "string" && Number.isSafeInteger(r.seq)) {
        e.receipt = r;
      }
      return Promise.resolve(e);
    }
    e.receipt = r;
    return receiptHash(r).then(function (h) {
      if (h !== r.hash) {
        e.problem = "hash_mismatch";
        e.reason = "hash mismatch: recomputed " + h;
        return e;
      }
      var vp = valueProblem(r);
      if (vp) {
        e.problem = "malformed";
        e.reason = "malformed: " + vp;
        return e;
      }
      return Promise.all(r.actions.map(function (a, i) { return actionID(r, i); })).then(function (ids) {
        e.ids = ids;
        return e;
      });
    });
  }

  // chain checks the entries of one instance, sorted by seq, as
  // receipt.Verifier does: the first bad receipt is reported, and every
  // later one fails with it.
  function chain(entries, anchor, partial) {
    var started = false, seq = 0, hash = ZERO_HASH;
    if (anchor) {
      started = true;
      seq = anchor.seq;
      hash = anchor.hash;
    }
    var broken = null; // the seq of the first bad receipt
    entries.forEach(function (e) {
      var r = e.receipt;
      if (broken !== null) {
        if (!e.problem) {
          e.problem = "broken_chain";
          e.reason = "chain broken at seq " + broken + " (an earlier receipt of this chain)";
        }
        return;
      }
      if (e.problem) {
        broken = r.seq;
        return;
      }
      var s = r.seq;
      if (started && s !== seq + 1) {
        e.problem = "bad_sequence";
        e.reason = s === seq ? "chain broken at seq " + s + ": two receipts have seq " + s :
          "chain broken at seq " + s + ": seq " + s + " follows seq " + seq;
      } else if (!started && s !== 1 && !partial) {
        e.problem = "bad_sequence";
        e.reason = "chain broken at seq " + s + ": the chain starts at seq " + s + ", not 1";
      } else if ((started || s === 1) && r.prev_hash !== (started ? hash : ZERO_HASH)) {
        e.problem = "broken_link";
        e.reason = started ? "chain broken at seq " + s + ": prev_hash is not the hash of seq " + seq :
          "chain broken at seq " + s + ": prev_hash of seq 1 is not the zero hash";
      } else {
        for (var i = 0; i < e.ids.length; i++) {
          if (e.ids[i] !== r.actions[i].id) {
            e.problem = "bad_action_id";
            e.reason = "bad action id: actions[" + i + "].id is " + quote(r.actions[i].id) + ", want " + e.ids[i];
            break;
          }
        }
      }
      if (e.problem) {
        broken = s;
        return;
      }
      started = true;
      seq = s;
      hash = r.hash;
    });
  }

  // anchors returns the trusted predecessors by instance key.
  function anchors(after) {
    var m = new Map();
    (Array.isArray(after) ? after : []).forEach(function (a) {
      if (isPlainObject(a) && typeof a.tenant_id === "string" && typeof a.domain === "string" &&
        typeof a.subject === "string" && Number.isSafeInteger(a.seq) && typeof a.hash === "string") {
        m.set(instanceKey(a), { seq: a.seq, hash: a.hash });
      }
    });
    return m;
  }

  // verifyReceipts: see the top of this file.
  function verifyReceipts(receipts, options) {
    var opts = options || {};
    if (!Array.isArray(receipts)) {
      return Promise.reject(new TypeError("verifyReceipts: receipts must be an array"));
    }
    var cpPromise = opts.ledger === false ? null : open(opts.checkpoint, opts.key);
    if (cpPromise) {
      cpPromise.catch(function () {}); // reported per receipt below
    }
    return Promise.all(receipts.map(check)).then(function (entries) {
      var byInstance = new Map();
      entries.forEach(function (e) {
        if (!e.receipt) {
          return;
        }
        var k = instanceKey(e.receipt);
        if (!byInstance.has(k)) {
          byInstance.set(k, []);
        }
        byInstance.get(k).push(e);
      });
      var anchored = anchors(opts.after);
      byInstance.forEach(function (list, k) {
        list.sort(function (a, b) { return a.receipt.seq - b.receipt.seq || a.index - b.index; });
        chain(list, anchored.get(k), opts.partial === true);
      });
      if (!cpPromise) {
        return entries;
      }
      return cpPromise.then(function (cp) {
        var source = proofSource(opts.proofs, cp.size);
        var todo = entries.filter(function (e) { return !e.problem; });
        return pool(todo, PROOF_FETCHES, function (e) {
          return source(e.receipt.hash).then(function (p) {
            return proofProblem(e.receipt, p, cp);
          }, function (err) {
            return "not in ledger: the inclusion proof is unavailable (" + (err && err.message ? err.message : String(err)) + ")";
          }).then(function (reason) {
            if (reason) {
              e.problem = "not_included";
              e.reason = reason;
            }
          });
        });
      }, function (err) {
        entries.forEach(function (e) {
          if (!e.problem) {
            e.problem = err.problem || "bad_checkpoint";
            e.reason = err.problem ? err.message : "bad checkpoint: " + err.message;
          }
        });
      }).then(function () { return entries; });
    }).then(function (entries) {
      return entries.map(function (e) {
        return { hash: e.hash, ok: !e.problem, reason: e.reason, problem: e.problem };
      });
    });
  }

  var api = {
    verifyReceipts: verifyReceipts,
    canonicalize: canonicalize,
    receiptHash: receiptHash,
    openCheckpoint: openCheckpoint,
    ZERO_HASH: ZERO_HASH
  };
  Object.freeze(api);
  if (!global.autonomicsVerify) {
    Object.defineProperty(global, "autonomicsVerify", { value: api, enumerable: true });
  }
})(typeof window !== "undefined" ? window : globalThis);
