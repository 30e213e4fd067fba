// Reloads a page that asks for it (data-refresh on <body>, in seconds)
// while no form field has the focus or holds typed text. Everything else
// works without this script.
(function () {
  const every = Number(document.body.dataset.refresh || 0);
  if (!every) return;
  const busy = () => {
    const a = document.activeElement;
    if (a && ["INPUT", "TEXTAREA", "SELECT", "BUTTON"].includes(a.tagName)) return true;
    return Array.from(document.querySelectorAll("textarea, input:not([type=hidden])"))
      .some((f) => f.value !== f.defaultValue);
  };
  const tick = () => (busy() ? setTimeout(tick, every * 1000) : location.reload());
  setTimeout(tick, every * 1000);
})();
