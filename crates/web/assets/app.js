// popdesk: the little the UI does in JavaScript beyond htmx. Everything here is a
// convenience; every page works without it (the content policy allows only this file
// and htmx, no inline scripts).
"use strict";

document.documentElement.classList.add("js");

// A mail's formatted text is a sandboxed frame of a fixed height (the stylesheet's);
// once it has loaded, the frame grows or shrinks to fit the mail, up to a limit. The
// frame is same-origin without scripts, so its height can be read from here; setting
// it through the style object is allowed by the content policy (style="" is not).
var MAX_MAIL_HEIGHT = 2400;

function fitMailFrame(frame) {
  try {
    var doc = frame.contentDocument;
    if (!doc || !doc.documentElement) {
      return;
    }
    // The document is at least as tall as its frame: shrink the frame first, then
    // measure what the mail needs.
    frame.style.height = "60px";
    var height = Math.min(doc.documentElement.scrollHeight + 4, MAX_MAIL_HEIGHT);
    frame.style.height = height + "px";
  } catch (e) {
    // Not readable (another origin): keep the stylesheet's height.
  }
}

// Load events do not bubble, but they pass the document in the capture phase: this
// catches every frame, also those htmx swaps in later.
document.addEventListener(
  "load",
  function (event) {
    if (event.target.classList && event.target.classList.contains("mail-frame")) {
      fitMailFrame(event.target);
    }
  },
  true
);

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("iframe.mail-frame").forEach(function (frame) {
    if (frame.contentDocument && frame.contentDocument.readyState === "complete") {
      fitMailFrame(frame);
    }
  });

  // "Copy" next to a new API token.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button || !navigator.clipboard) {
      return;
    }
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) {
      return;
    }
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      button.textContent = "Copied";
    });
  });

  // The mailbox form: picking a security moves the port along with it, as long as the
  // port is still one of the standard ones (a custom port is left alone). POP3: 995 or
  // 110; SMTP: 465, 587, or 25 without encryption.
  var STANDARD_PORTS = {
    tls: { field: "port", ports: { implicit: "995", starttls: "110", none: "110" } },
    smtp_tls: { field: "smtp_port", ports: { implicit: "465", starttls: "587", none: "25" } }
  };
  document.addEventListener("change", function (event) {
    var select = event.target;
    var standard = STANDARD_PORTS[select.id];
    if (!standard) {
      return;
    }
    var port = document.getElementById(standard.field);
    if (!port) {
      return;
    }
    var known = port.value === "";
    Object.keys(standard.ports).forEach(function (mode) {
      known = known || port.value === standard.ports[mode];
    });
    if (known && standard.ports[select.value]) {
      port.value = standard.ports[select.value];
    }
  });
});

// The self-updating ticket list: htmx fetches #ticket-results again every few seconds.
// A refresh would drop ticked boxes and move rows under the cursor, so it is held back
// while tickets are ticked or someone is typing in a field (the filters swap the list
// themselves when they change).
function isTyping(element) {
  if (!element) {
    return false;
  }
  var tag = element.tagName;
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || element.isContentEditable;
}

document.addEventListener("htmx:beforeRequest", function (event) {
  var source = event.detail && event.detail.elt;
  if (!source || !source.hasAttribute || !source.hasAttribute("data-self-updating")) {
    return;
  }
  var ticked = source.querySelector("input[type=checkbox]:checked");
  if (ticked || isTyping(document.activeElement)) {
    event.preventDefault();
  }
});

// Keys for working the list and a ticket; none of them is needed to use a page, and
// none acts while typing in a field or with a modifier held.
var KEYS = [
  ["/", "Search the ticket list"],
  ["j / k", "Next / previous ticket in the list"],
  ["o or Enter", "Open the marked ticket"],
  ["r", "Write a reply (on a ticket)"],
  ["?", "Show or hide these keys"]
];
var markedRow = -1;

function listRows() {
  return Array.prototype.slice.call(document.querySelectorAll("#ticket-results tbody tr[data-href]"));
}

function markRow(index) {
  var rows = listRows();
  if (rows.length === 0) {
    return;
  }
  markedRow = Math.max(0, Math.min(index, rows.length - 1));
  rows.forEach(function (row, i) {
    row.classList.toggle("marked", i === markedRow);
  });
  rows[markedRow].scrollIntoView({ block: "nearest" });
}

// A refresh of the list keeps the marked row marked.
document.addEventListener("htmx:afterSwap", function () {
  if (markedRow >= 0) {
    markRow(markedRow);
  }
});

function toggleKeyHelp() {
  var help = document.getElementById("key-help");
  if (help) {
    help.remove();
    return;
  }
  help = document.createElement("aside");
  help.id = "key-help";
  help.className = "card key-help";
  help.setAttribute("role", "dialog");
  help.setAttribute("aria-label", "Keyboard shortcuts");
  var title = document.createElement("h2");
  title.textContent = "Keyboard shortcuts";
  help.appendChild(title);
  var list = document.createElement("dl");
  KEYS.forEach(function (pair) {
    var key = document.createElement("dt");
    var kbd = document.createElement("kbd");
    kbd.textContent = pair[0];
    key.appendChild(kbd);
    var what = document.createElement("dd");
    what.textContent = pair[1];
    list.appendChild(key);
    list.appendChild(what);
  });
  help.appendChild(list);
  document.body.appendChild(help);
}

document.addEventListener("keydown", function (event) {
  if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) {
    if (event.key === "Escape" && isTyping(event.target)) {
      event.target.blur();
    }
    return;
  }
  var rows;
  switch (event.key) {
    case "/":
      var search = document.getElementById("q");
      if (search) {
        event.preventDefault();
        search.focus();
      }
      break;
    case "j":
      markRow(markedRow + 1);
      break;
    case "k":
      markRow(markedRow < 0 ? 0 : markedRow - 1);
      break;
    case "o":
    case "Enter":
      // Enter on a focused link or button is that element's own.
      if (event.key === "Enter" && event.target !== document.body) {
        break;
      }
      rows = listRows();
      if (markedRow >= 0 && rows[markedRow]) {
        event.preventDefault();
        window.location.href = rows[markedRow].getAttribute("data-href");
      }
      break;
    case "r":
      var reply = document.getElementById("reply-body");
      if (reply) {
        event.preventDefault();
        reply.focus();
      }
      break;
    case "?":
      toggleKeyHelp();
      break;
    case "Escape":
      var help = document.getElementById("key-help");
      if (help) {
        help.remove();
      }
      break;
  }
});
