// Keten kiosk: a keyboard-wedge barcode scanner types the code and presses Enter; the mirror
// opens that product. Keys typed slowly (a person, not a scanner) start the code afresh.
"use strict";

(() => {
  const GAP_MS = 1000;
  const CODE_LENGTH_MAX = 512;
  let code = "";
  let last = 0;
  document.addEventListener("keydown", (event) => {
    const now = Date.now();
    if (now - last > GAP_MS) code = "";
    last = now;
    if (event.key === "Enter") {
      event.preventDefault();
      if (code.length >= 8) {
        const lang = document.documentElement.lang || "en";
        window.location.assign("/kiosk/scan?lang=" + encodeURIComponent(lang) + "&data=" + encodeURIComponent(code));
      }
      code = "";
    } else if (code.length >= CODE_LENGTH_MAX) {
      return;
    } else if (event.ctrlKey && !event.altKey && event.code === "BracketRight") {
      // Scanners send GS1's group separator (FNC1) as Ctrl+] (by key position, any layout).
      code += "\u001d";
    } else if (event.key.length === 1 && (!event.ctrlKey || event.altKey)) {
      // Printable keys, AltGr (Ctrl+Alt) ones included.
      code += event.key;
    }
  });
})();
