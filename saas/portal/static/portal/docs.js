// The API reference: Swagger UI (from drf-spectacular-sidecar) on the version's document, with
// what it leaves out for assistive technology added back (a name for its server list).
window.addEventListener("DOMContentLoaded", function () {
  var node = document.getElementById("reference");
  function label() {
    var servers = node.querySelector("select#servers");
    if (servers && !servers.getAttribute("aria-label")) servers.setAttribute("aria-label", "Server");
  }
  new MutationObserver(label).observe(node, { childList: true, subtree: true });
  window.SwaggerUIBundle({
    url: node.getAttribute("data-url"),
    domNode: node,
    deepLinking: false,
    tryItOutEnabled: true,
    persistAuthorization: false,
  });
});
