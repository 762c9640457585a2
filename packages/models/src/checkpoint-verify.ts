/** What a checkpoint without a checksum needs before it is read: an explicit opt-in. */
import { DataFormatError } from '@advrec/data';

/** Options of {@link readCheckpoint} and {@link parseCheckpoint}. */
export interface ReadCheckpointOptions {
  /**
   * Read a checkpoint that carries no checksum (`ADVRECK1`, or safetensors without
   * `advrec.sha256`, written by earlier versions or by other tools): its integrity cannot be
   * verified, and a warning says so. Default: the environment variable
   * `ADVREC_ALLOW_UNVERIFIED_CHECKPOINTS=1` (the CLI's `--allow-unverified-checkpoints`);
   * otherwise such a file is refused, naming it.
   */
  readonly allowUnverified?: boolean;
}

/**
 * Refuses (or, when allowed, warns about) a checkpoint without a checksum. @internal
 * @throws DataFormatError naming the file when unverified checkpoints are not allowed.
 */
export function admitUnverified(file: string, what: string, options: ReadCheckpointOptions): void {
  const allowed =
    options.allowUnverified ?? process.env['ADVREC_ALLOW_UNVERIFIED_CHECKPOINTS'] === '1';
  if (!allowed)
    throw new DataFormatError(
      { file },
      'a checkpoint with a checksum (ADVRECK2, or safetensors with advrec.sha256); one without cannot be verified: read it with --allow-unverified-checkpoints (ADVREC_ALLOW_UNVERIFIED_CHECKPOINTS=1) and save it again',
      `${what} without a checksum`,
    );

  process.emitWarning(
    `${file}: ${what} has no checksum; read without verification (a corrupt file would go unnoticed)`,
    'AdvrecUnverifiedCheckpoint',
  );
}
