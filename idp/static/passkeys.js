// Passkeys (WebAuthn) for the IdP's pages: adding one, and using one to sign in or as the
// second step. Progressive enhancement: the buttons stay hidden unless the browser has
// PublicKeyCredential. Each box carries its URLs, the CSRF token and its messages (already in
// the page's language) in data- attributes, since the Content-Security-Policy allows no inline
// script. Binary fields travel as base64url, converted here by hand.
(function () {
  "use strict";

  if (!window.PublicKeyCredential || !navigator.credentials || !window.fetch) {
    return;
  }

  // -- base64url <-> ArrayBuffer ------------------------------------------------------------

  function bufferToBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) {
      binary += String.fromCharCode(bytes[i]);
    }
    return window.btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function base64urlToBuffer(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) {
      base64 += "=";
    }
    var binary = window.atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function descriptors(list) {
    return (list || []).map(function (descriptor) {
      var copy = { type: descriptor.type, id: base64urlToBuffer(descriptor.id) };
      if (descriptor.transports) {
        copy.transports = descriptor.transports;
      }
      return copy;
    });
  }

  // -- Options from the server, for the browser -----------------------------------------------

  function creationOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = base64urlToBuffer(json.challenge);
    options.user = Object.assign({}, json.user, { id: base64urlToBuffer(json.user.id) });
    options.excludeCredentials = descriptors(json.excludeCredentials);
    return options;
  }

  function requestOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = base64urlToBuffer(json.challenge);
    options.allowCredentials = descriptors(json.allowCredentials);
    return options;
  }

  // -- The browser's answer, for the server ---------------------------------------------------

  function registrationJSON(credential) {
    var response = credential.response;
    var transports = typeof response.getTransports === "function" ? response.getTransports() : [];
    return {
      id: credential.id,
      rawId: bufferToBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: {
        clientDataJSON: bufferToBase64url(response.clientDataJSON),
        attestationObject: bufferToBase64url(response.attestationObject),
        transports: transports,
      },
    };
  }

  function assertionJSON(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: bufferToBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: {
        clientDataJSON: bufferToBase64url(response.clientDataJSON),
        authenticatorData: bufferToBase64url(response.authenticatorData),
        signature: bufferToBase64url(response.signature),
        userHandle: response.userHandle ? bufferToBase64url(response.userHandle) : undefined,
      },
    };
  }

  // -- Talking to the IdP -------------------------------------------------------------------

  function postJSON(box, url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": box.dataset.csrfToken,
      },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response.json().then(
        function (data) {
          return { ok: response.ok, data: data || {} };
        },
        function () {
          return { ok: false, data: {} };
        }
      );
    });
  }

  // -- One box: a button, a message, perhaps a name --------------------------------------------

  function showMessage(box, text) {
    var message = box.querySelector("[data-passkey-message]");
    message.textContent = text;
    message.hidden = !text;
    if (text) {
      message.setAttribute("tabindex", "-1");
      message.focus();
    }
  }

  function browserFailure(box, error) {
    var name = error && error.name;
    if (name === "NotAllowedError" || name === "AbortError") {
      return box.dataset.messageCancelled;
    }
    if (name === "InvalidStateError") {
      return box.dataset.messageExists;
    }
    return box.dataset.messageFailed;
  }

  function refused(box, result) {
    showMessage(box, result.data.message || box.dataset.messageFailed);
    if (result.data.redirect) {
      // The session ended, or this step is done already: go where the IdP says, after the
      // message has been seen.
      window.setTimeout(function () {
        window.location.assign(result.data.redirect);
      }, 2500);
    }
  }

  function run(box, button) {
    var creating = box.dataset.passkey === "register" || box.dataset.passkey === "setup";
    var nameInput = box.querySelector("[data-passkey-name]");
    var body = nameInput ? { name: nameInput.value } : {};
    var stage = "server";
    button.disabled = true;
    showMessage(box, "");
    postJSON(box, box.dataset.optionsUrl, body)
      .then(function (result) {
        if (!result.ok) {
          refused(box, result);
          return null;
        }
        stage = "browser";
        var ceremony = creating
          ? navigator.credentials.create({ publicKey: creationOptions(result.data) })
          : navigator.credentials.get({ publicKey: requestOptions(result.data) });
        return ceremony.then(function (credential) {
          if (!credential) {
            throw new Error("no credential");
          }
          stage = "server";
          var answer = Object.assign({}, body, {
            credential: creating ? registrationJSON(credential) : assertionJSON(credential),
          });
          return postJSON(box, box.dataset.verifyUrl, answer);
        });
      })
      .then(function (result) {
        if (!result) {
          return;
        }
        if (result.ok && result.data.redirect) {
          window.location.assign(result.data.redirect);
          return;
        }
        refused(box, result);
      })
      .catch(function (error) {
        showMessage(
          box,
          stage === "browser" ? browserFailure(box, error) : box.dataset.messageUnreachable
        );
      })
      .then(function () {
        button.disabled = false;
      });
  }

  function enhance(box) {
    if (box.dataset.passkeyReady) {
      return;
    }
    box.dataset.passkeyReady = "true";
    var button = box.querySelector("[data-passkey-start]");
    button.addEventListener("click", function () {
      run(box, button);
    });
    box.hidden = false;
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-passkey]"), enhance);
    Array.prototype.forEach.call(
      document.querySelectorAll("[data-passkey-unsupported]"),
      function (notice) {
        notice.hidden = true;
      }
    );
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
