// wharf: a little progressive enhancement. Every page works without it.
"use strict";

// Copy buttons: <button data-copy="text">.
document.addEventListener("click", async (e) => {
  const btn = e.target.closest("[data-copy]");
  if (!btn) return;
  const text = btn.getAttribute("data-copy");
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Clipboard API refused (plain HTTP): select a hidden textarea instead.
    const ta = document.createElement("textarea");
    ta.value = text; ta.setAttribute("readonly", ""); ta.style.position = "fixed"; ta.style.opacity = "0";
    document.body.appendChild(ta); ta.select(); document.execCommand("copy"); ta.remove();
  }
  const label = btn.textContent;
  btn.textContent = "Copied";
  btn.setAttribute("aria-live", "polite");
  setTimeout(() => { btn.textContent = label; }, 1500);
});

// Confirmation before destructive forms: <form data-confirm="question">.
document.addEventListener("submit", (e) => {
  const q = e.target.getAttribute("data-confirm");
  if (q && !window.confirm(q)) e.preventDefault();
});

// Relative times, kept current: the same words as the server's.
function ago(t) {
  const s = (Date.now() - t) / 1000;
  const unit = (n, name) => (n === 1 ? "1 " + name + " ago" : n + " " + name + "s ago");
  if (s < 60) return "less than a minute ago";
  if (s < 3600) return unit(Math.floor(s / 60), "minute");
  if (s < 86400) return unit(Math.floor(s / 3600), "hour");
  if (s < 30 * 86400) return unit(Math.floor(s / 86400), "day");
  if (s < 365 * 86400) return unit(Math.floor(s / (30 * 86400)), "month");
  return unit(Math.floor(s / (365 * 86400)), "year");
}
function refreshTimes() {
  for (const el of document.querySelectorAll("time[datetime]")) {
    const t = Date.parse(el.getAttribute("datetime"));
    if (!isNaN(t) && /ago$/.test(el.textContent)) el.textContent = ago(t);
  }
}
setInterval(refreshTimes, 30000);

// Instant filtering of the rows on this page while typing; submitting
// the form still filters on the server across all pages.
for (const input of document.querySelectorAll("input[data-filter]")) {
  const table = document.querySelector(input.getAttribute("data-filter"));
  if (!table) continue;
  input.addEventListener("input", () => {
    const q = input.value.trim();
    for (const row of table.tBodies[0].rows) {
      row.hidden = q !== "" && !row.getAttribute("data-name").includes(q);
    }
  });
}

// Sorting selects apply at once.
for (const sel of document.querySelectorAll(".filters select")) {
  sel.addEventListener("change", () => sel.form.submit());
}
