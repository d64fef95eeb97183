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
  // port is still one of the two standard ones (a custom port is left alone).
  document.addEventListener("change", function (event) {
    var select = event.target;
    if (select.id !== "tls") {
      return;
    }
    var port = document.getElementById("port");
    if (!port || (port.value !== "" && port.value !== "995" && port.value !== "110")) {
      return;
    }
    port.value = select.value === "implicit" ? "995" : "110";
  });
});
