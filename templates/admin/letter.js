// The letter editor's live preview: while the organizer types, the letter is sent (with the
// form's CSRF token) to the preview address, which answers with its problems and a picture of
// the first page. Without this script the Preview button does the same.
(function () {
  var form = document.getElementById("letter-form");
  var source = document.getElementById("f-source");
  var picture = document.getElementById("letter-preview");
  var noImage = document.getElementById("no-image");
  var problems = document.getElementById("problems");
  if (!form || !source || !picture || !window.fetch) { return; }
  var timer = null;
  var sent = 0;

  function showLine(line) {
    var lines = source.value.split("\n");
    var start = 0;
    for (var i = 0; i < line - 1 && i < lines.length; i++) { start += lines[i].length + 1; }
    source.focus();
    source.setSelectionRange(start, start + (lines[line - 1] || "").length);
  }

  function listProblems(found) {
    problems.textContent = "";
    if (!found.length) { source.removeAttribute("aria-invalid"); return; }
    source.setAttribute("aria-invalid", "true");
    var box = document.createElement("div");
    box.className = "field-error";
    var list = document.createElement("ul");
    found.forEach(function (p) {
      var item = document.createElement("li");
      if (p.line) {
        var link = document.createElement("a");
        link.href = "#f-source";
        link.textContent = p.where;
        link.setAttribute("data-line", p.line);
        item.appendChild(link);
        item.appendChild(document.createTextNode(": "));
      }
      var text = document.createElement("span");
      text.textContent = p.message;
      item.appendChild(text);
      list.appendChild(item);
    });
    box.appendChild(list);
    problems.appendChild(box);
  }

  function refresh() {
    var mine = ++sent;
    var body = new URLSearchParams(new FormData(form));
    fetch(form.getAttribute("data-preview"), { method: "POST", body: body, credentials: "same-origin" })
      .then(function (answer) { return answer.json(); })
      .then(function (data) {
        if (mine !== sent) { return; }  // a newer preview is on its way
        listProblems(data.problems || []);
        noImage.hidden = !data.no_image;
        noImage.textContent = data.no_image || "";
        if (data.image) { picture.src = data.image; picture.hidden = false; }
        form.setAttribute("data-previewed", String(mine));
      })
      .catch(function () { /* the Preview button still works */ });
  }

  source.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 800);
  });
  problems.addEventListener("click", function (event) {
    var line = event.target.getAttribute && event.target.getAttribute("data-line");
    if (line) { event.preventDefault(); showLine(parseInt(line, 10)); }
  });
})();
