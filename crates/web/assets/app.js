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
