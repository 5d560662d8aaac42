# CodeCarbon's offline tracker as a decorator and as a context manager, with its argument
# names (country_iso_code in ISO 3166-1 alpha-3, output_dir, tracking_mode) and an argument
# wattprint does not support (save_to_api), which must warn and not crash.
import os

from codecarbon import OfflineEmissionsTracker, track_emissions


@track_emissions(project_name="cc_decorated", offline=True, country_iso_code="FRA",
                 measure_power_secs=0.1, output_dir=os.environ["OUT_DIR"])
def train():
    return sum(i * i for i in range(200_000))


if __name__ == "__main__":
    train()
    with OfflineEmissionsTracker(country_iso_code="CAN", project_name="cc_ctx", measure_power_secs=0.1,
                                 tracking_mode="process", output_dir=os.environ["OUT_DIR"],
                                 save_to_api=False) as tracker:
        sum(range(100_000))
    print("final", tracker.final_emissions)
