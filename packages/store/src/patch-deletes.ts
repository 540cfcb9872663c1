/**
 * Deletes as patch parts (migration 0012): milliseconds instead of a mutation that waits
 * on every part's merges, and hidden from every query at once all the same.
 */
export const PATCH_DELETE = { lightweight_delete_mode: 'lightweight_update' } as const;

/** Reads what is on disk: neither the deleted-row mask nor pending patches applied. */
export const ON_DISK = { apply_deleted_mask: 0, apply_patch_parts: 0 } as const;
