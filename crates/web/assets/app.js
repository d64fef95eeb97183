// popdesk: the little the UI does in JavaScript beyond htmx. Everything here is a
// convenience; every page works without it (the content policy allows only this file
// and htmx, no inline scripts).
"use strict";

document.documentElement.classList.add("js");

document.addEventListener("DOMContentLoaded", function () {
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
