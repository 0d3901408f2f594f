// The session record at the chair: focus goes where the monitor types next. A form that came back
// with errors (the page answered 400, the form bound) puts focus on its first invalid field; after a
// reading is saved (the page is shown again at #vitals) focus returns to the first vitals field.
// Without this script the page works the same, only without the focus moves.
(function () {
  "use strict";
  function focusOn(field) {
    if (!field || typeof field.focus !== "function") { return false; }
    field.focus();
    if (field.scrollIntoView) { field.scrollIntoView({ block: "center" }); }
    return document.activeElement === field;
  }
  function place() {
    var invalid = document.querySelector("main form .is-invalid");
    if (invalid) {
      // A radio group or checkbox marks its inputs; a plain field is itself the input.
      var input = invalid.matches("input, select, textarea") ? invalid : invalid.querySelector("input, select, textarea");
      if (focusOn(input)) { return; }
    }
    var refused = document.querySelector("main form .alert-danger");
    if (refused) {
      // A refusal of the whole form (no one field to blame): its first field.
      if (focusOn(refused.closest("form").querySelector("input:not([type=hidden]), select, textarea"))) { return; }
    }
    if (window.location.hash === "#vitals") {
      focusOn(document.querySelector("#vitals form input:not([type=hidden])"));
    }
  }
  // Going to a #fragment moves focus to its target (or the page) once the page has loaded, so
  // focus is placed after that, not while the page is still loading.
  if (document.readyState === "complete") {
    window.setTimeout(place, 0);
  } else {
    window.addEventListener("load", function () { window.setTimeout(place, 0); });
  }
})();
