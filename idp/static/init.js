// Starts GOV.UK Frontend's components (error summary focus, password reveal, details...).
// A module from the IdP itself, so the Content-Security-Policy needs no inline script for it.
import { initAll } from "./govuk/govuk-frontend.min.js";

initAll();
