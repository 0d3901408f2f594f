// Watches a PDF summary being made and offers its download when ready, without reloading the page;
// offers "Try again" (the form the page holds, hidden) when it has been waiting too long.
(function () {
  "use strict";
  var box = document.querySelector("[data-summary-status-url]");
  if (!box) { return; }
  var url = box.getAttribute("data-summary-status-url");
  var message = box.querySelector("[data-summary-message]");
  var action = box.querySelector("[data-summary-action]");
  var delay = 500;
  function show(state) {
    if (state.status === "ready") {
      message.textContent = "The summary is ready (" + state.pages + " page" + (state.pages === 1 ? "" : "s") + ").";
      var link = document.createElement("a");
      link.href = state.download_url;
      link.className = "btn btn-primary";
      link.textContent = "Download the PDF";
      action.replaceChildren(link);
      action.hidden = false;
      link.focus();
      return true;
    }
    if (state.status === "failed") {
      message.textContent = "The summary could not be made: " + state.error;
      action.hidden = false;
      return true;
    }
    if (state.retry_offered && action.hidden) {
      message.textContent = "The summary is taking longer than it should. Try again; this page offers the download when it is ready.";
      action.hidden = false;
    }
    return false;
  }
  function poll() {
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (state) {
        if (!show(state)) {
          delay = Math.min(delay * 1.5, 5000);
          window.setTimeout(poll, delay);
        }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  poll();
})();
