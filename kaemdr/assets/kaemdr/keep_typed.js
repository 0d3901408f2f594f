// No lost input on a page of several forms (issue 20). Each form on such a page posts on its own,
// so text typed into one form would be lost when another is submitted (the page comes back
// redirected after a success, or re-rendered with status 400 after a refusal). On a page whose
// container has `data-keep-typed="<page key>"`, submitting any of its forms first keeps, in the
// tab's sessionStorage, what was typed into the page's OTHER forms (only fields whose value differs
// from the one the server rendered); the page that comes back puts those values back where the
// field is still as rendered, and the kept copy is dropped at once (what was put back is in the
// fields again, and is kept again on the next submit). The submitted form's own fields are never
// kept: its values went to the server. Password, hidden and file fields (and so the CSRF token) are
// never kept. Without this script the pages work the same, only without keeping what was typed
// elsewhere.
(function () {
  "use strict";
  var container = document.querySelector("[data-keep-typed]");
  if (!container || !window.sessionStorage) { return; }
  var storageKey = "kaemdr:keep-typed:" + (container.getAttribute("data-keep-typed") || window.location.pathname);
  var MAX_AGE_MS = 60 * 60 * 1000;
  var KEPT_TYPES = ["text", "textarea", "number", "date", "time", "datetime-local", "email", "tel",
    "url", "search", "select-one", "select-multiple", "checkbox", "radio"];

  // A form is known across page loads by where it posts and its `action` field, if any (some pages
  // post every form to the page's own address and tell them apart by that field).
  function formKey(form) {
    var action = form.getAttribute("action") || window.location.pathname;
    var which = form.querySelector("input[type=hidden][name=action]");
    return action + (which ? "#" + which.value : "");
  }

  function keptFields(form) {
    return Array.prototype.filter.call(form.elements, function (field) {
      return field.name && KEPT_TYPES.indexOf(field.type) !== -1 && !field.disabled && !field.readOnly;
    });
  }

  // The field's value, or for a checkbox or radio button whether it is checked; `initial` gives the
  // value the server rendered (the HTML's own value, checked state or selected options).
  function valueOf(field, initial) {
    if (field.type === "checkbox" || field.type === "radio") {
      return initial ? field.defaultChecked : field.checked;
    }
    if (field.type === "select-one" || field.type === "select-multiple") {
      var chosen = Array.prototype.filter.call(field.options, function (option) {
        return initial ? option.defaultSelected : option.selected;
      }).map(function (option) { return option.value; });
      if (initial && !chosen.length && field.type === "select-one" && field.options.length) {
        chosen = [field.options[0].value];  // nothing marked selected: the browser shows the first
      }
      return chosen;
    }
    return initial ? field.defaultValue : field.value;
  }

  function same(a, b) { return JSON.stringify(a) === JSON.stringify(b); }

  // Checkboxes and radio buttons share their name with the group: the key names the value too.
  function fieldKey(field) {
    return (field.type === "checkbox" || field.type === "radio") ? field.name + "=" + field.value : field.name;
  }

  function setValue(field, value) {
    if (field.type === "checkbox" || field.type === "radio") {
      field.checked = value === true;
    } else if (field.type === "select-one" || field.type === "select-multiple") {
      Array.prototype.forEach.call(field.options, function (option) {
        option.selected = value.indexOf(option.value) !== -1;
      });
    } else {
      field.value = value;
    }
    field.dispatchEvent(new Event("input", { bubbles: true }));
    field.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function forms() { return Array.prototype.slice.call(container.querySelectorAll("form")); }

  // Submitting a form keeps what was typed into the others.
  document.addEventListener("submit", function (event) {
    var submitted = event.target;
    // A form outside the container (the header's, the menu's) leads elsewhere: nothing to keep for.
    if (!container.contains(submitted)) { return; }
    var kept = {};
    forms().forEach(function (form) {
      if (form === submitted) { return; }
      var changed = {};
      keptFields(form).forEach(function (field) {
        var now = valueOf(field, false);
        if (!same(now, valueOf(field, true))) { changed[fieldKey(field)] = now; }
      });
      if (Object.keys(changed).length) { kept[formKey(form)] = changed; }
    });
    try {
      if (Object.keys(kept).length) {
        window.sessionStorage.setItem(storageKey, JSON.stringify({ at: Date.now(), forms: kept }));
      } else {
        window.sessionStorage.removeItem(storageKey);
      }
    } catch (error) { /* storage full or refused: the page works as without this script */ }
  }, true);

  // The page that comes back puts the kept values back, where the field is still as rendered.
  var saved = null;
  try {
    saved = JSON.parse(window.sessionStorage.getItem(storageKey) || "null");
    window.sessionStorage.removeItem(storageKey);
  } catch (error) { saved = null; }
  if (!saved || !saved.forms || Date.now() - saved.at > MAX_AGE_MS) { return; }
  forms().forEach(function (form) {
    var values = saved.forms[formKey(form)];
    if (!values) { return; }
    keptFields(form).forEach(function (field) {
      var key = fieldKey(field);
      if (!Object.prototype.hasOwnProperty.call(values, key)) { return; }
      if (!same(valueOf(field, false), valueOf(field, true))) { return; }  // changed since: leave it
      setValue(field, values[key]);
    });
  });
}());
