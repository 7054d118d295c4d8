/* The verify page's form, improved where scripts run: files dropped onto the box are checked at
   once, and files larger than the page takes are stopped here instead of after a long upload.
   The form works the same without this script. */
(function () {
  "use strict";
  var form = document.getElementById("verify-form");
  if (!form) { return; }
  var input = document.getElementById("verify-file");
  var zone = document.getElementById("verify-drop");
  var status = document.getElementById("verify-status");
  var hint = document.getElementById("verify-drop-hint");
  var limit = Number(form.getAttribute("data-limit")) || 0;
  if (hint) { hint.hidden = false; }

  function total(files) {
    var sum = 0;
    for (var i = 0; i < files.length; i += 1) { sum += files[i].size; }
    return sum;
  }

  function send() {
    if (limit && total(input.files) > limit) {
      status.textContent = form.getAttribute("data-too-large");
      status.className = "field-error";
      return false;
    }
    status.textContent = form.getAttribute("data-checking");
    status.className = "hint";
    return true;
  }

  form.addEventListener("submit", function (event) {
    if (!send()) { event.preventDefault(); }
  });

  function over(event) {
    event.preventDefault();
    zone.classList.add("flash", "info");
  }
  function away() { zone.classList.remove("flash", "info"); }
  zone.addEventListener("dragenter", over);
  zone.addEventListener("dragover", over);
  zone.addEventListener("dragleave", away);
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    away();
    var files = event.dataTransfer && event.dataTransfer.files;
    if (!files || !files.length) { return; }
    input.files = files;
    if (send()) { form.submit(); }
  });
}());
