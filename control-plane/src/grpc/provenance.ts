import { Provenance as ProtoProvenance } from "@bifrost/proto";
import type { Provenance } from "../cascade/cascade.js";

/** The wire enum for a cascade provenance. */
export function provenanceToProto(provenance: Provenance): ProtoProvenance {
  switch (provenance) {
    case "organization":
      return ProtoProvenance.PROVENANCE_ORGANIZATION;
    case "global":
      return ProtoProvenance.PROVENANCE_GLOBAL;
    case "override":
      return ProtoProvenance.PROVENANCE_OVERRIDE;
  }
}
