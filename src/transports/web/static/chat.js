// The staff chat with script: the page's forms post in the background and the bot's messages
// appear without a reload; whatever else arrives (a reminder, the support team's answer) comes
// over server-sent events. Without script the same forms post and redirect, so nothing here is
// needed for the chat to work.
(function () {
  'use strict';
  var log = document.getElementById('conversation');
  var box = document.getElementById('message');
  if (!log || !box || !window.fetch || !window.URLSearchParams) { return; }
  var seen = {};
  var after = Number(log.getAttribute('data-after') || 0);
  Array.prototype.forEach.call(log.querySelectorAll('[data-seq]'), function (li) {
    seen[li.getAttribute('data-seq')] = true;
  });

  function nonce() {
    var a = new Uint8Array(12);
    window.crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
  }

  // Adds the bot's entries in `html` that are not shown yet, in order of their number.
  function add(html) {
    var t = document.createElement('template');
    t.innerHTML = html;
    Array.prototype.forEach.call(t.content.querySelectorAll('li[data-seq]'), function (li) {
      var seq = li.getAttribute('data-seq');
      if (seen[seq]) { return; }
      seen[seq] = true;
      after = Math.max(after, Number(seq));
      log.appendChild(li);
    });
    log.lastElementChild && log.lastElementChild.scrollIntoView({ block: 'end' });
  }

  // The person's own words are shown on this page only: the server never keeps them.
  function mine(text, cls) {
    var li = document.createElement('li');
    li.className = cls || 'you';
    li.textContent = text;
    log.appendChild(li);
  }

  document.addEventListener('submit', function (e) {
    var form = e.target;
    if (form.getAttribute('action') !== '/send') { return; }
    e.preventDefault();
    var data = new URLSearchParams(new FormData(form));
    data.set('nonce', nonce());
    data.set('after', String(after));
    var text = data.get('message') || '';
    if (!text.trim()) { return; }
    // A choice is shown as the button read.
    var button = form.querySelector('button');
    mine(form.className === 'choice' && button ? button.textContent : text);
    if (form.id === 'send') { box.value = ''; }
    fetch('/send', {
      method: 'POST',
      body: data,
      credentials: 'same-origin',
      headers: { 'X-Esrbot-Fetch': '1' }
    }).then(function (r) {
      return r.text().then(function (body) {
        if (r.ok) { add(body); } else { mine(body, 'error'); }
      });
    }).catch(function () {
      form.submit();
    });
    box.focus();
  });

  if (window.EventSource) {
    var live = new EventSource('/events?after=' + after);
    live.onmessage = function (e) { add(e.data); };
  }
}());
