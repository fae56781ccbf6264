// A test that needs a system package (Chromium, OpenBLAS, OpenMPI) is skipped, with its reason
// printed, on a user's machine that lacks the package. CI installs every one of them, so under
// CI=true the same skip is also a failure: a missing package must not turn a CI run green by
// skipping the checks that need it. A build made without a package on purpose (MEDIX_NO_OPENBLAS=1
// or MEDIX_NO_MPI=1, as CI's portable build) is not a missing package: pass `deliberate`.
import t from 'tap';

export function skipIfMissing(missing: string | null, deliberate = false): { skip?: string } {
  if (missing === null) return {};
  if (process.env.CI === 'true' && !deliberate)
    t.fail(`${missing}: CI installs the system packages, so this test may not be skipped there (CI=true)`);
  return { skip: missing };
}
