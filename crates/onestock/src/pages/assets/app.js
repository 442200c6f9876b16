// onestock Seller Central: served from the binary at /assets/app.js. Every form works
// without this script; it only adds in-place updates, live figures and progress.
(function () {
  "use strict";

  function onReady(f) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", f);
    else f();
  }

  // The store switcher sends its choice at once.
  function autosubmit() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (sel) {
      sel.addEventListener("change", function () { sel.form.submit(); });
    });
  }

  // The offer form: "Share your available inventory" once the page knows the SKU.
  function offerForm() {
    var form = document.getElementById("offer-form");
    if (!form) return;
    var sku = form.querySelector("input[name=sku]");
    var slot = document.getElementById("share-slot");
    var condition = form.querySelector("select[name=condition]");
    var quantity = form.querySelector("input[name=quantity]");
    var own = { condition: condition ? condition.value : "", quantity: quantity ? quantity.value : "" };

    function applyChoice() {
      var section = document.getElementById("share-section");
      var existing = form.querySelector("input[name=share][value=existing]");
      var locked = !!(section && existing && existing.checked);
      var lockedField = form.querySelector("input[name=locked]");
      if (lockedField) lockedField.value = locked ? "1" : "";
      if (condition) {
        if (locked) { condition.value = section.getAttribute("data-pool-condition"); }
        else if (condition.disabled) { condition.value = own.condition; }
        condition.disabled = locked;
      }
      if (quantity) {
        if (locked) { quantity.value = section.getAttribute("data-pool-quantity"); }
        else if (quantity.disabled) { quantity.value = own.quantity; }
        quantity.disabled = locked;
      }
      form.querySelectorAll("[data-pool-note]").forEach(function (n) { n.hidden = !locked; });
    }

    function refresh() {
      if (!slot || !sku || !sku.value.trim()) return;
      var fulfillment = form.querySelector("select[name=fulfillment]");
      var q = "asin=" + encodeURIComponent(form.querySelector("input[name=asin]").value) +
        "&store=" + encodeURIComponent(form.querySelector("input[name=store]").value) +
        "&sku=" + encodeURIComponent(sku.value.trim()) +
        "&fulfillment=" + encodeURIComponent(fulfillment ? fulfillment.value : "merchant");
      fetch("/add-product/share?" + q, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : ""; })
        .then(function (html) { slot.innerHTML = html; applyChoice(); })
        .catch(function () {});
    }

    if (sku) sku.addEventListener("blur", refresh);
    var f = form.querySelector("select[name=fulfillment]");
    if (f) f.addEventListener("change", refresh);
    form.addEventListener("change", function (e) {
      if (e.target && e.target.name === "share") applyChoice();
    });
    if (condition) condition.addEventListener("change", function () { if (!condition.disabled) own.condition = condition.value; });
    if (quantity) quantity.addEventListener("input", function () { if (!quantity.disabled) own.quantity = quantity.value; });
    applyChoice();
  }

  // A SKU's page: new quantities without a reload (long poll of the seller's events).
  function liveSku() {
    var live = document.getElementById("live");
    if (!live) return;
    var sku = live.getAttribute("data-sku");
    var after = live.getAttribute("data-after") || "0";
    function poll() {
      fetch("/sku/live?sku=" + encodeURIComponent(sku) + "&after=" + encodeURIComponent(after), { credentials: "same-origin" })
        .then(function (r) {
          if (r.redirected) { signedOut(); throw new Error("signed out"); }
          if (!r.ok) throw new Error("status " + r.status);
          return r.json();
        })
        .then(function (data) {
          after = String(data.last_seq);
          (data.listings || []).forEach(function (l) {
            document.querySelectorAll("[data-qty-store='" + l.store + "']").forEach(function (cell) {
              if (cell.textContent !== String(l.quantity)) {
                cell.textContent = String(l.quantity);
                cell.classList.remove("flash-cell"); void cell.offsetWidth; cell.classList.add("flash-cell");
              }
            });
            document.querySelectorAll("[data-status-store='" + l.store + "']").forEach(function (cell) {
              cell.textContent = l.status;
              cell.className = l.active ? "status-active" : "status-inactive";
            });
            // The in-place fields follow too, unless the seller is typing in them: then
            // the form keeps the version it was based on, and a stale change is refused.
            document.querySelectorAll("input[data-qty-input='" + l.store + "']").forEach(function (inp) {
              var form = inp.form;
              if (!form || document.activeElement === inp || inp.value !== inp.defaultValue) return;
              inp.value = inp.defaultValue = String(l.quantity);
              var shown = form.querySelector("input[name=shown_quantity]");
              var version = form.querySelector("input[name=version]");
              if (shown) shown.value = String(l.quantity);
              if (version) version.value = String(l.pool_version);
            });
          });
          if (data.changed) {
            var note = document.getElementById("live-note");
            if (note) note.textContent = "Updated " + new Date().toLocaleTimeString();
          }
          if (data.gone) {
            var note = document.getElementById("live-note");
            if (note) note.textContent = "This SKU has no listing any more.";
            return;
          }
          setTimeout(poll, 100);
        })
        .catch(function () { if (!stopped) setTimeout(poll, 3000); });
    }
    var stopped = false;
    function signedOut() {
      stopped = true;
      var note = document.getElementById("live-note");
      if (note) note.textContent = "Your session has ended: sign in again to follow the figures.";
    }
    poll();
  }

  // An upload in progress: the progress bar with the records processed.
  function uploadProgress() {
    var box = document.getElementById("upload-progress");
    if (!box) return;
    var id = box.getAttribute("data-upload");
    var bar = box.querySelector("progress");
    var text = box.querySelector("[data-processed]");
    function poll() {
      fetch("/upload-products/status?id=" + encodeURIComponent(id), { credentials: "same-origin" })
        .then(function (r) {
          if (r.redirected) { stopped = true; throw new Error("signed out"); }
          if (!r.ok) throw new Error("status " + r.status);
          return r.json();
        })
        .then(function (s) {
          if (text) text.textContent = String(s.records_processed);
          [["records-processed", s.records_processed], ["records-successful", s.records_successful],
           ["records-failed", s.records_failed]].forEach(function (c) {
            var el = document.getElementById(c[0]);
            if (el) el.textContent = String(c[1]);
          });
          var st = document.getElementById("upload-status");
          if (st) st.textContent = s.status;
          if (bar && s.records_total > 0) { bar.max = s.records_total; bar.value = s.records_processed; }
          if (s.finished) { window.location.reload(); return; }
          setTimeout(poll, 400);
        })
        .catch(function () { if (!stopped) setTimeout(poll, 2000); });
    }
    var stopped = false;
    poll();
  }

  onReady(function () { autosubmit(); offerForm(); liveSku(); uploadProgress(); });
})();

// In-place "Save" of quantity and price: sent without leaving the page; the answer
// (which stores the change reached, or the refusal with the current figures) appears
// in the row. Without the script, the same form posts and the page comes back.
(function () {
  "use strict";
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form || form.getAttribute("action") !== "/inventory/save" || !window.fetch) return;
    e.preventDefault();
    var body = new URLSearchParams();
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.name && !el.disabled) body.append(el.name, el.value);
    });
    var button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-Requested-With": "onestock-pages", "Content-Type": "application/x-www-form-urlencoded" },
      body: body.toString()
    })
      .then(function (r) {
        var type = r.headers.get("content-type") || "";
        if (type.indexOf("application/json") !== 0) throw new Error("not an answer for the script");
        return r.json();
      })
      .then(function (a) {
        if (button) button.disabled = false;
        var q = document.querySelector("input[name=quantity][form='" + form.id + "']");
        var p = document.querySelector("input[name=price][form='" + form.id + "']");
        if (a.quantity !== undefined) {
          if (q) { q.value = q.defaultValue = String(a.quantity); }
          if (p) { p.value = p.defaultValue = String(a.price); }
          form.querySelector("input[name=shown_quantity]").value = String(a.quantity);
          form.querySelector("input[name=shown_price]").value = String(a.price);
          form.querySelector("input[name=version]").value = String(a.version);
          var store = form.querySelector("input[name=store]").value;
          document.querySelectorAll("[data-qty-store='" + store + "']").forEach(function (c) { c.textContent = String(a.quantity); });
        }
        var box = document.querySelector("[data-row-message='" + form.id + "']");
        if (box) {
          box.className = "row-message " + (a.ok ? "ok" : "error");
          box.setAttribute("role", a.ok ? "status" : "alert");
          box.textContent = "";
          if (a.code) {
            var code = document.createElement("strong");
            code.className = "code";
            code.textContent = a.code;
            box.appendChild(code);
            box.appendChild(document.createTextNode(" "));
          }
          box.appendChild(document.createTextNode(a.text));
        }
      })
      .catch(function () { form.submit(); });
  });
})();
