// Starts GOV.UK Frontend's components (skip link, notification banner focus, buttons).
// A module from the service itself, so the Content-Security-Policy needs no inline script for it.
import { initAll } from "./govuk/govuk-frontend.min.js";

initAll();
