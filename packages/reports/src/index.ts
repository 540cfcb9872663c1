export { dropoffReport, rate } from './dropoff-report.js';
export { buildReview, REVIEW_TOP_REASONS } from './review.js';
export { reviewMarkdown } from './review-markdown.js';
