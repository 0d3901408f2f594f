// The booking form's free starts. Without this script each start is a link that opens the form again
// with that time filled in (and the room, day and monitor kept). With it, a click fills the start
// time in place, and choosing another room, day or monitor fetches that day's free starts from the
// API (GET /api/v1/rooms/<id>/free-slots/), the same list the page shows.
(function () {
  "use strict";
  var section = document.getElementById("free-slots");
  if (!section) { return; }
  var form = section.closest("form");
  var time = form.querySelector("#id_time");
  var list = section.querySelector("[data-slot-list]");

  function choose(link) {
    time.value = link.getAttribute("data-slot");
    list.querySelectorAll("[data-slot]").forEach(function (other) {
      other.classList.toggle("active", other === link);
      other.setAttribute("aria-pressed", other === link ? "true" : "false");
    });
    time.dispatchEvent(new Event("change", { bubbles: true }));
    time.focus();
  }

  list.addEventListener("click", function (event) {
    var link = event.target.closest("[data-slot]");
    if (!link) { return; }
    event.preventDefault();
    choose(link);
  });

  function value(name) {
    var field = form.querySelector("#id_" + name);
    return field ? field.value : "";
  }

  function render(body) {
    var day = new Date(body.date + "T12:00:00");
    section.querySelector("[data-slot-day]").textContent = day.toLocaleDateString(undefined, {
      weekday: "long", day: "numeric", month: "long"
    });
    list.textContent = "";
    if (!body.slots.length) {
      var empty = document.createElement("li");
      empty.className = "text-body-secondary";
      empty.textContent = body.is_open
        ? "No free start that day: choose another day or room."
        : "The room is closed that day: choose another day.";
      list.appendChild(empty);
      return;
    }
    body.times.forEach(function (at) {
      var item = document.createElement("li");
      var link = document.createElement("a");
      var params = new URLSearchParams({ room: value("room"), date: body.date, time: at });
      if (value("monitor")) { params.set("monitor", value("monitor")); }
      if (value("prescriber")) { params.set("prescriber", value("prescriber")); }
      link.href = "?" + params.toString();
      link.className = "btn btn-sm btn-outline-primary";
      link.setAttribute("data-slot", at);
      link.setAttribute("aria-label", "Start at " + at);
      link.textContent = at;
      item.appendChild(link);
      list.appendChild(item);
    });
  }

  function refresh() {
    var room = value("room");
    if (!room || !value("date")) { return; }
    var params = new URLSearchParams({ date: value("date"), pathway: section.getAttribute("data-pathway") });
    if (value("monitor")) { params.set("monitor", value("monitor")); }
    fetch(section.getAttribute("data-rooms-api") + room + "/free-slots/?" + params.toString(), {
      credentials: "same-origin", headers: { Accept: "application/json" }
    }).then(function (response) {
      return response.ok ? response.json() : null;
    }).then(function (body) {
      if (body) { render(body); }
    }).catch(function () { /* the list stays as it was; the form still books */ });
  }

  ["room", "date", "monitor"].forEach(function (name) {
    var field = form.querySelector("#id_" + name);
    if (field) { field.addEventListener("change", refresh); }
  });
})();
