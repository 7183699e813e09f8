// Keten provenance page: shows times in the viewer's time zone, and checks every recorded step
// against the public transparency log in the browser (WebCrypto SHA-256 and Ed25519):
//   1. each field the page shows is disclosed with its salt, and its digest is a line of the
//      step's log entry (so the field is what was recorded);
//   2. the entry's leaf hash leads through the inclusion proof to the checkpoint's root
//      (RFC 9162 §2.1.3.2);
//   3. the checkpoint is a C2SP signed note signed by the log's published Ed25519 key.
"use strict";

(() => {
  const encoder = new TextEncoder();
  const utf8 = (text) => encoder.encode(text);
  const fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  const toBase64 = (bytes) => btoa(String.fromCharCode(...bytes));
  const concat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  };
  const equal = (a, b) => a.length === b.length && a.every((byte, i) => byte === b[i]);
  const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));

  function localTimes() {
    const lang = document.documentElement.lang || "en";
    const format = new Intl.DateTimeFormat(lang, {
      day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short",
    });
    for (const element of document.querySelectorAll("time[datetime]")) {
      const date = new Date(element.getAttribute("datetime"));
      if (!Number.isNaN(date.getTime())) {
        element.title = element.textContent;
        element.textContent = format.format(date);
      }
    }
  }

  // `<name>+<hex key ID>+<base64(0x01 ‖ public key)>`
  async function parseVerifierKey(text) {
    // The base64 may itself hold '+': split at the first two only.
    const match = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(text.trim());
    if (!match) throw new Error("the log key is malformed");
    const [, name, hexId, encoded] = match;
    const bytes = fromBase64(encoded);
    if (bytes.length !== 33 || bytes[0] !== 0x01) throw new Error("the log key is not an Ed25519 key");
    const publicKey = bytes.slice(1);
    const id = (await sha256(concat(utf8(name + "\n"), bytes))).slice(0, 4);
    if (Array.from(id, (b) => b.toString(16).padStart(2, "0")).join("") !== hexId) {
      throw new Error("the log key's ID does not match the key");
    }
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    return { name, id, key };
  }

  // C2SP tlog-proof: header, extra, index, proof hashes, blank line, the signed checkpoint.
  function parseBundle(text) {
    const split = text.indexOf("\n\n");
    if (split < 0) throw new Error("the proof has no checkpoint");
    const lines = text.slice(0, split).split("\n");
    if (lines[0] !== "c2sp.org/tlog-proof@v1") throw new Error("not a tlog-proof");
    let at = 1;
    let entry = null;
    if (lines[at] && lines[at].startsWith("extra ")) entry = fromBase64(lines[at++].slice(6));
    const index = /^index (0|[1-9][0-9]*)$/.exec(lines[at++] || "");
    if (!index || !entry) throw new Error("the proof has no index or entry");
    const hashes = lines.slice(at).map(fromBase64);
    return { entry, index: Number(index[1]), hashes, note: text.slice(split + 2) };
  }

  function parseNote(text) {
    const split = text.indexOf("\n\n");
    if (split < 0) throw new Error("the checkpoint is not a signed note");
    const body = text.slice(0, split + 1);
    const [origin, size, root] = body.split("\n");
    if (!/^(0|[1-9][0-9]*)$/.test(size || "")) throw new Error("the checkpoint has no size");
    const signatures = text.slice(split + 2).split("\n").filter((line) => line.startsWith("\u2014 ")).map((line) => {
      const [, name, encoded] = line.split(" ");
      return { name, bytes: fromBase64(encoded) };
    });
    return { body, origin, size: Number(size), root: fromBase64(root), signatures };
  }

  async function rootFromInclusion(leaf, index, size, proof) {
    if (index >= size) throw new Error("the index is beyond the checkpoint");
    let fn = index;
    let sn = size - 1;
    let r = leaf;
    for (const p of proof) {
      if (sn === 0) throw new Error("the inclusion proof is too long");
      if (fn % 2 === 1 || fn === sn) {
        r = await sha256(concat([1], p, r));
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) {
            fn = Math.floor(fn / 2);
            sn = Math.floor(sn / 2);
          }
        }
      } else {
        r = await sha256(concat([1], r, p));
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    if (sn !== 0) throw new Error("the inclusion proof is too short");
    return r;
  }

  // Checks one step's answer from /consumer-proof: `fields` is the JSON object of the fields the
  // page shows (pointer → JSON text), `shownTime` the ISO time the page shows.
  async function checkAnswer(answer, index, fields, shownTime, logKey) {
    const bundle = parseBundle(answer.proof);
    if (String(bundle.index) !== String(index)) throw new Error("the proof is for another entry");
    const entry = new TextDecoder().decode(bundle.entry).split("\n");
    if (entry[0] !== "keten/epcis-event/v1") throw new Error("the log entry is not an event commitment");
    const digests = new Set(entry.slice(1).filter((line) => line));
    const disclosed = new Map();
    for (const field of answer.disclosures) {
      const digest = await sha256(concat(utf8("keten-disclosure-v1"), [0], fromBase64(field.salt), utf8(field.name), [0], utf8(field.value)));
      if (!digests.has(toBase64(digest))) throw new Error("field " + field.name + " = " + field.value + " is not what the log recorded");
      disclosed.set(field.name, field.value);
    }
    const shown = JSON.parse(fields);
    for (const [name, value] of Object.entries(shown)) {
      if (disclosed.get(name) !== value) throw new Error("the page shows " + name + " = " + value + ", which is not what was recorded");
    }
    if (!disclosed.has("/eventTime") || new Date(JSON.parse(disclosed.get("/eventTime"))).getTime() !== new Date(shownTime).getTime()) {
      throw new Error("the time shown is not the recorded time");
    }
    const checkpoint = parseNote(bundle.note);
    if (checkpoint.origin !== logKey.name) throw new Error("the checkpoint is of another log (" + checkpoint.origin + ")");
    const root = await rootFromInclusion(await sha256(concat([0], bundle.entry)), bundle.index, checkpoint.size, bundle.hashes);
    if (!equal(root, checkpoint.root)) throw new Error("the entry is not in the log at index " + index);
    const signature = checkpoint.signatures.find((line) => line.name === logKey.name && line.bytes.length === 68 && equal(line.bytes.slice(0, 4), logKey.id));
    if (!signature) throw new Error("the checkpoint is not signed by the log's key");
    const valid = await crypto.subtle.verify({ name: "Ed25519" }, logKey.key, signature.bytes.slice(4), utf8(checkpoint.body));
    if (!valid) throw new Error("the checkpoint's signature does not verify");
    return { origin: checkpoint.origin, size: checkpoint.size };
  }

  // A proof that could not be fetched says nothing about the record: the step stays unchecked.
  class Unchecked extends Error {}

  async function verifyStep(item, logKey, box) {
    const index = item.dataset.logIndex;
    const url = box.dataset.proofPath + index + "?item=" + encodeURIComponent(box.dataset.item);
    let response;
    try {
      response = await fetch(url, { headers: { accept: "application/json" } });
    } catch (error) {
      throw new Unchecked("the proof could not be fetched (" + (error.message || error) + ")");
    }
    // Busy or unreachable: try again later. Any other answer for a step the page lists as
    // logged (not found, an error, no JSON) is a failure of that record.
    if ([429, 502, 503, 504].includes(response.status)) {
      throw new Unchecked("the log is busy (HTTP " + response.status + ")");
    }
    if (!response.ok) throw new Error("the log has no valid proof of this step (HTTP " + response.status + ")");
    const answer = await response.json();
    return checkAnswer(answer, index, item.dataset.fields, item.querySelector("time").getAttribute("datetime"), logKey);
  }

  // For tests of the checks themselves (in the browser, with altered answers).
  window.KetenProof = Object.freeze({ parseVerifierKey, checkAnswer });

  async function verify() {
    const box = document.getElementById("verified");
    const status = document.getElementById("verify-status");
    const log = document.getElementById("verify-log");
    if (!box || !status) return;
    const show = (state, text) => {
      status.className = "status " + state;
      status.textContent = text;
      box.dataset.state = state;
    };
    const note = (text, failed) => {
      if (!log) return;
      const line = document.createElement("li");
      line.textContent = text;
      if (failed) line.className = "failed";
      log.appendChild(line);
    };
    const steps = Array.from(document.querySelectorAll("li.event[data-log-index]"));
    if (steps.length === 0) return show("nothing", box.dataset.nothing);
    if (!window.crypto || !crypto.subtle) return show("unavailable", box.dataset.unavailable);
    show("pending", box.dataset.pending);
    let logKey;
    try {
      const response = await fetch("/log/key");
      logKey = await parseVerifierKey(await response.text());
      note("Log key: " + logKey.name);
    } catch (error) {
      note(String(error.message || error), true);
      // No Ed25519 in this browser's WebCrypto (importKey refused it): nothing is known. A key
      // that does not parse or whose ID does not match is a failure.
      const unsupported = error.name === "NotSupportedError" || error.name === "TypeError";
      return unsupported ? show("unavailable", box.dataset.unavailable) : show("failed", box.dataset.failed);
    }
    let failures = 0;
    let unchecked = 0;
    for (const step of steps) {
      const label = step.querySelector(".step").textContent + " — " + step.querySelector("time").getAttribute("datetime");
      try {
        const checked = await verifyStep(step, logKey, box);
        step.classList.add("ok");
        note(label + ": entry " + step.dataset.logIndex + " of " + checked.size + " in " + checked.origin + ", signature valid");
      } catch (error) {
        if (error instanceof Unchecked) {
          unchecked += 1;
        } else {
          failures += 1;
          step.classList.add("failed");
        }
        note(label + ": " + (error.message || error), true);
      }
    }
    if (failures > 0) return show("failed", box.dataset.failed);
    if (unchecked > 0) return show("incomplete", box.dataset.incomplete);
    return show("ok", box.dataset.ok);
  }

  localTimes();
  verify().catch((error) => {
    const box = document.getElementById("verified");
    const status = document.getElementById("verify-status");
    if (box && status) {
      status.className = "status failed";
      status.textContent = String(error.message || error);
      box.dataset.state = "failed";
    }
  });
})();
