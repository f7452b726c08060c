// Starts the agent console (no inline script: the page's CSP forbids it).
import init from "/agent/pkg/app.js";
init();
