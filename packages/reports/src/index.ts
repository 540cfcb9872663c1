export { dropoffReport, rate } from './dropoff-report.js';
