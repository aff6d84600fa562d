// Canopy passkeys: the WebAuthn ceremonies of the sign-in page, the two-step
// page and the passkeys page. A static file because the issuer's CSP allows
// no inline script (script-src 'self'). Each page marks a box with
// data-passkey="login" | "2fa" | "register" and data-csrf (the form token,
// sent in X-CSRF-Token); the box stays hidden where WebAuthn is missing.
"use strict";
(() => {
  const b64u = {
    decode(s) {
      const b64 = s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4);
      return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
    },
    encode(buf) {
      let bin = "";
      for (const b of new Uint8Array(buf)) bin += String.fromCharCode(b);
      return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    },
  };

  // post sends JSON to the issuer and returns its JSON answer; a refusal
  // throws an Error with the issuer's message and its data.
  async function post(url, csrf, body) {
    const resp = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    });
    let data = {};
    try {
      data = await resp.json();
    } catch (e) {
      data = {};
    }
    if (!resp.ok) {
      const err = new Error(data.message || "Something went wrong. Please try again.");
      err.data = data;
      throw err;
    }
    return data;
  }

  function creationOptions(o) {
    const pk = o.publicKey;
    pk.challenge = b64u.decode(pk.challenge);
    pk.user.id = b64u.decode(pk.user.id);
    for (const c of pk.excludeCredentials || []) c.id = b64u.decode(c.id);
    return { publicKey: pk };
  }

  function requestOptions(o) {
    const pk = o.publicKey;
    pk.challenge = b64u.decode(pk.challenge);
    for (const c of pk.allowCredentials || []) c.id = b64u.decode(c.id);
    return { publicKey: pk };
  }

  function credentialJSON(cred) {
    const r = cred.response;
    const response = { clientDataJSON: b64u.encode(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = b64u.encode(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = b64u.encode(r.authenticatorData);
      response.signature = b64u.encode(r.signature);
      if (r.userHandle) response.userHandle = b64u.encode(r.userHandle);
    }
    return {
      id: cred.id,
      rawId: b64u.encode(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      response,
      clientExtensionResults: cred.getClientExtensionResults(),
    };
  }

  function say(box, msg) {
    const p = box.querySelector(".passkey-error");
    p.textContent = msg;
    p.hidden = !msg;
  }

  async function ceremony(box, button) {
    const mode = box.dataset.passkey;
    const csrf = box.dataset.csrf;
    say(box, "");
    button.disabled = true;
    try {
      if (mode === "register") {
        // The password is typed into the ceremony itself: adding a factor
        // needs it now, not only a recent sign-in.
        const input = document.getElementById("passkey-name");
        const pw = document.getElementById("passkey-password");
        const options = await post("/webauthn/register/begin", csrf, {
          name: input ? input.value : "",
          password: pw ? pw.value : "",
        });
        if (pw) pw.value = "";
        const cred = await navigator.credentials.create(creationOptions(options));
        await post("/webauthn/register/finish", csrf, credentialJSON(cred));
        location.reload();
        return;
      }
      const path = mode === "login" ? "/webauthn/login/" : "/webauthn/2fa/";
      const returnTo = document.querySelector('input[name="return_to"]');
      const options = await post(path + "begin", csrf, { return_to: returnTo ? returnTo.value : "" });
      const cred = await navigator.credentials.get(requestOptions(options));
      const done = await post(path + "finish", csrf, credentialJSON(cred));
      location.assign(done.redirect || "/");
    } catch (err) {
      if (err.data && err.data.login_url) {
        location.assign(err.data.login_url);
        return;
      }
      say(box, err.name === "NotAllowedError" ? "The passkey request was cancelled or timed out." : err.message);
    } finally {
      button.disabled = false;
    }
  }

  if (!window.PublicKeyCredential) return;
  for (const box of document.querySelectorAll("[data-passkey]")) {
    const button = box.querySelector("button");
    box.hidden = false;
    button.addEventListener("click", () => ceremony(box, button));
  }
})();
