// The support pages follow changes made anywhere (the command line, Discord, another browser):
// when an escalation changes the page is read again, unless a note is being written, when a
// notice says so instead.
(function () {
  'use strict';
  if (!window.EventSource) { return; }
  var live = new EventSource('/support/events');
  live.addEventListener('escalations', function () {
    var note = document.getElementById('note');
    if (note && note.value.trim()) {
      var main = document.getElementById('main');
      if (!document.getElementById('changed')) {
        var p = document.createElement('p');
        p.id = 'changed';
        p.className = 'notice';
        p.setAttribute('role', 'status');
        p.textContent = 'This escalation was changed elsewhere. Reload the page to see it.';
        main.insertBefore(p, main.firstChild);
      }
      return;
    }
    window.location.reload();
  });
}());
