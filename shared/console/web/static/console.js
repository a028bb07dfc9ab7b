// Console pages: the timeline's "Verify in browser" button. It reads the
// receipts the page shows, fetches the signed checkpoint, its key and each
// receipt's inclusion proof from this origin's JSON API, and hands them to
// window.autonomicsVerify (verify.js), which checks everything here, in
// the browser. Each row is then marked with the result and its reason.
(function () {
  'use strict';
  var button = document.getElementById('verify');
  if (!button) {
    return;
  }
  var status = document.getElementById('verify-status');

  function text(url) {
    return fetch(url, {credentials: 'same-origin', cache: 'no-store'}).then(function (r) {
      if (!r.ok) {
        throw new Error(url + ' answered ' + r.status);
      }
      return r.text();
    });
  }

  // proof fetches the inclusion proof of hash for the checkpoint's tree
  // size. A receipt the ledger does not hold yet has none (null): the
  // verifier then says it is not in the ledger.
  function proof(hash, size) {
    var url = '/api/v1/receipts/' + encodeURIComponent(hash) + '/proof' + (size ? '?size=' + encodeURIComponent(size) : '');
    return fetch(url, {credentials: 'same-origin', cache: 'no-store'}).then(function (r) {
      if (r.status === 404) {
        return null;
      }
      if (!r.ok) {
        throw new Error(url + ' answered ' + r.status);
      }
      return r.json();
    });
  }

  function rowsByHash() {
    var m = {};
    document.querySelectorAll('li.receipt[data-hash]').forEach(function (li) {
      (m[li.dataset.hash] = m[li.dataset.hash] || []).push(li);
    });
    return m;
  }

  function mark(li, ok, reason) {
    li.classList.remove('verified-ok', 'verified-bad');
    li.classList.add(ok ? 'verified-ok' : 'verified-bad');
    li.dataset.verified = ok ? 'ok' : 'bad';
    var m = li.querySelector('.mark');
    m.textContent = ok ? '✓ verified' : '✗ ' + (reason || 'failed');
    m.title = ok ? 'hash, chain link and inclusion proof check out' : (reason || 'failed');
  }

  button.addEventListener('click', function () {
    button.disabled = true;
    status.textContent = 'Verifying…';
    var receipts;
    Promise.resolve().then(function () {
      if (!window.autonomicsVerify || typeof window.autonomicsVerify.verifyReceipts !== 'function') {
        throw new Error('the verifier (verify.js) is not loaded');
      }
      receipts = JSON.parse(document.getElementById('receipts-data').textContent);
      return Promise.all([text('/api/v1/checkpoint'), text('/api/v1/checkpoint/key')]);
    }).then(function (got) {
      // The page shows a window of each instance's chain: partial.
      return window.autonomicsVerify.verifyReceipts(receipts, {checkpoint: got[0], key: got[1], proofs: proof, partial: true});
    }).then(function (results) {
      var rows = rowsByHash();
      var bad = 0;
      results.forEach(function (res, i) {
        var h = (receipts[i] && receipts[i].hash) || res.hash;
        if (!res.ok) {
          bad++;
        }
        (rows[h] || rows[res.hash] || []).forEach(function (li) { mark(li, res.ok, res.reason); });
      });
      status.textContent = bad === 0
        ? 'All ' + results.length + ' receipts shown verified in this browser.'
        : bad + ' of ' + results.length + ' receipts failed verification.';
      status.dataset.result = bad === 0 ? 'ok' : 'bad';
    }).catch(function (e) {
      status.textContent = 'Verification could not run: ' + e.message;
      status.dataset.result = 'error';
    }).then(function () {
      button.disabled = false;
    });
  });
})();
