// keygate console: the little JavaScript the pages use. Dialogs open and close, a key is
// copied to the clipboard or downloaded as a file, the region selector switches on change.
// What it says is in the page's language: the page hands it the texts (data-text-*).
// Everything else is plain HTML forms answered by the server.
(function () {
  'use strict';

  function byId(id) {
    return id ? document.getElementById(id) : null;
  }

  // The page's texts in its language, from the body's data-text-* attributes; English when
  // a page has none.
  function pageText(name, fallback) {
    var given = document.body ? document.body.getAttribute('data-text-' + name) : null;
    return given || fallback;
  }

  function say(button, text) {
    var status = byId(button.getAttribute('data-status-target')) || byId('copy-status');
    if (status) {
      status.textContent = text;
    }
  }

  function textToCopy(button) {
    if (button.hasAttribute('data-copy-text')) {
      return button.getAttribute('data-copy-text');
    }
    var target = byId(button.getAttribute('data-copy-target'));
    return target ? (target.value || target.textContent || '') : '';
  }

  // The Clipboard API where it works; else a hidden textarea and execCommand('copy'),
  // placed inside an open modal dialog so that it is not inert.
  function copy(button) {
    var text = textToCopy(button);
    var done = function (copied) {
      button.setAttribute('data-copy-state', copied ? 'copied' : 'failed');
      say(button, copied
        ? pageText('copied', 'Copied to the clipboard.')
        : pageText('copy-failed', 'Could not copy: select the text and press Ctrl+C (Cmd+C on a Mac).'));
    };
    var fallback = function () {
      var area = document.createElement('textarea');
      area.value = text;
      area.setAttribute('readonly', '');
      area.className = 'clipboard-helper';
      (button.closest('dialog') || document.body).appendChild(area);
      area.select();
      var copied = false;
      try {
        copied = document.execCommand('copy');
      } catch (error) {
        copied = false;
      }
      area.remove();
      done(copied);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, fallback);
    } else {
      fallback();
    }
  }

  function download(button) {
    var target = byId(button.getAttribute('data-download-target'));
    if (!target) {
      return;
    }
    var url = URL.createObjectURL(new Blob([target.value + '\n'], { type: 'text/plain' }));
    var link = document.createElement('a');
    link.href = url;
    link.download = button.getAttribute('data-download-name') || 'api-key.txt';
    (button.closest('dialog') || document.body).appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
    button.setAttribute('data-download-state', 'done');
    say(button, pageText('downloaded', 'Downloaded {}.').replace('{}', link.download));
  }

  document.addEventListener('click', function (event) {
    var element = event.target.closest('[data-open-dialog], [data-close-dialog], [data-copy-target], [data-copy-text], [data-download-target]');
    if (!element) {
      return;
    }
    if (element.hasAttribute('data-open-dialog')) {
      var dialog = byId(element.getAttribute('data-open-dialog'));
      if (dialog && !dialog.open) {
        dialog.showModal();
      }
    } else if (element.hasAttribute('data-close-dialog')) {
      var open = element.closest('dialog');
      if (open) {
        open.close();
      }
    } else if (element.hasAttribute('data-download-target')) {
      download(element);
    } else {
      copy(element);
    }
    event.preventDefault();
  });

  document.addEventListener('DOMContentLoaded', function () {
    // A page answered to a POST (a new key, a form with errors) must not be sent again by
    // a reload: the history entry becomes a plain GET of the same address.
    if (window.history && window.history.replaceState) {
      window.history.replaceState(null, '', window.location.href);
    }
    // A dialog that holds a secret forgets it when closed: it cannot be shown again.
    document.querySelectorAll('dialog[data-secret]').forEach(function (dialog) {
      dialog.addEventListener('close', function () {
        if (dialog.open) {
          return;
        }
        dialog.querySelectorAll('[data-secret-value]').forEach(function (input) { input.value = ''; });
        dialog.remove();
      });
    });
    // Dialogs the server opened (a form sent back with errors, a new key) become modal.
    document.querySelectorAll('dialog[data-show-on-load]').forEach(function (dialog) {
      dialog.removeAttribute('open');
      dialog.showModal();
      var invalid = dialog.querySelector('[aria-invalid="true"]');
      if (invalid) {
        invalid.focus();
      }
    });
    document.querySelectorAll('select[data-autosubmit]').forEach(function (select) {
      select.addEventListener('change', function () { select.form.submit(); });
    });
  });
})();
