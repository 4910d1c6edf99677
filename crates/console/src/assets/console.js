// Coffer console: uploads with a progress bar (one PUT, or a multipart upload in 8 MiB
// parts for larger files; each part's bytes stream through the server to S3), and the
// countdown to a key's deletion. No other script runs on these pages.
"use strict";

(function () {
  const PART = 8 * 1024 * 1024;

  function send(method, url, csrf, body, onProgress) {
    return new Promise(function (resolve, reject) {
      const xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.setRequestHeader("x-coffer-csrf", csrf);
      if (body instanceof Blob) {
        xhr.setRequestHeader("content-type", "application/octet-stream");
      } else if (body) {
        xhr.setRequestHeader("content-type", "application/json");
      }
      if (onProgress && xhr.upload) {
        xhr.upload.onprogress = function (e) { if (e.lengthComputable) onProgress(e.loaded); };
      }
      xhr.onload = function () {
        let reply = {};
        try { reply = JSON.parse(xhr.responseText || "{}"); } catch (_) { reply = {}; }
        if (xhr.status >= 200 && xhr.status < 300) resolve(reply);
        else reject(new Error((reply.code || xhr.status) + ": " + (reply.message || xhr.statusText)));
      };
      xhr.onerror = function () { reject(new Error("The connection failed.")); };
      xhr.send(body || null);
    });
  }

  function setupUpload(form) {
    const fileInput = form.querySelector("#upload-file");
    const keyInput = form.querySelector("#upload-key");
    const bar = form.querySelector("#upload-progress");
    const status = form.querySelector("#upload-status");
    const base = form.dataset.base;
    const csrf = form.dataset.csrf;

    function show(done, total) {
      const pct = total === 0 ? 100 : Math.floor((done * 100) / total);
      bar.value = pct;
      status.textContent = pct + "%";
    }

    form.addEventListener("submit", async function (e) {
      e.preventDefault();
      const file = fileInput.files[0];
      if (!file) return;
      let key = keyInput.value;
      if (key === "" || key.endsWith("/")) key += file.name;
      const q = "key=" + encodeURIComponent(key) + "&type=" + encodeURIComponent(file.type || "");
      form.classList.add("busy");
      show(0, file.size);
      try {
        if (file.size <= PART) {
          await send("PUT", base + "/upload?" + q, csrf, file, function (n) { show(n, file.size); });
        } else {
          const created = await send("POST", base + "/multipart?" + q, csrf, null);
          const id = "&uploadId=" + encodeURIComponent(created.uploadId);
          const parts = [];
          try {
            for (let off = 0, n = 1; off < file.size; off += PART, n++) {
              const slice = file.slice(off, Math.min(off + PART, file.size));
              const done = off;
              const r = await send("PUT", base + "/multipart?" + q + id + "&partNumber=" + n, csrf, slice,
                function (loaded) { show(done + loaded, file.size); });
              parts.push({ partNumber: n, etag: r.etag });
            }
            await send("POST", base + "/multipart/complete?" + q + id, csrf, JSON.stringify(parts));
          } catch (err) {
            send("DELETE", base + "/multipart?" + q + id, csrf, null).catch(function () {});
            throw err;
          }
        }
        show(file.size, file.size);
        status.textContent = "100% · uploaded " + key;
        const link = document.createElement("a");
        link.href = base + "/object?key=" + encodeURIComponent(key);
        link.textContent = " Open";
        link.id = "upload-done";
        status.appendChild(link);
      } catch (err) {
        status.textContent = "Upload failed: " + err.message;
        status.classList.add("failed");
      } finally {
        form.classList.remove("busy");
      }
    });
  }

  function countdowns() {
    document.querySelectorAll(".remaining[data-deadline]").forEach(function (el) {
      const deadline = Number(el.dataset.deadline) * 1000;
      function tick() {
        let s = Math.max(0, Math.floor((deadline - Date.now()) / 1000));
        const d = Math.floor(s / 86400); s -= d * 86400;
        const h = Math.floor(s / 3600); s -= h * 3600;
        const m = Math.floor(s / 60); s -= m * 60;
        el.textContent = "(in " + d + "d " + h + "h " + m + "m " + s + "s)";
      }
      tick();
      setInterval(tick, 1000);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    const form = document.getElementById("upload");
    if (form) setupUpload(form);
    countdowns();
  });
})();
